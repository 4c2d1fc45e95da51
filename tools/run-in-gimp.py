# The GIMP half of tools/run: a Python-Fu batch for a headless GIMP 3 that makes an image,
# renders into it with plug-in-sd35-txt2img (non-interactive, as any script would) and exports
# the new layer to a PNG.
#   gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval \
#       -b 'exec(open("tools/run-in-gimp.py").read())' --quit
# (python-fu-eval provides Gimp and Gio.)  env, all set by tools/run:
#   SD35_RUN_OUT     the PNG to write          SD35_RUN_MODEL  model file or release folder
#   SD35_RUN_PROMPT  the prompt                SD35_RUN_SIZE   width = height (multiple of 16)
#   SD35_RUN_SEED    seed                      SD35_RUN_STEPS  steps (0 = the model's default)
#   SD35_RUN_BACKEND auto | cpu | cuda
# An exception makes the batch, and so gimp-console, fail.
import os
import time

env = os.environ
OUT = env["SD35_RUN_OUT"]
MODEL = env.get("SD35_RUN_MODEL", "")
PROMPT = env.get("SD35_RUN_PROMPT", "")
SIZE = int(env.get("SD35_RUN_SIZE", "256"))
SEED = int(env.get("SD35_RUN_SEED", "42"))
STEPS = int(env.get("SD35_RUN_STEPS", "0") or "0")
BACKEND = env.get("SD35_RUN_BACKEND", "auto")
NAME = "plug-in-sd35-txt2img"


def say(msg):
    print("run-in-gimp: " + msg, flush=True)


proc = Gimp.get_pdb().lookup_procedure(NAME)
if proc is None:
    raise RuntimeError("%s is not registered: the plug-in is not installed in this GIMP's "
                       "plug-ins folder (%s)" % (NAME, Gimp.directory()))

# an empty RGB image of the asked size; the procedure puts its layer at the origin
img = Gimp.Image.new(SIZE, SIZE, Gimp.ImageBaseType.RGB)
bg = Gimp.Layer.new(img, "Background", SIZE, SIZE, Gimp.ImageType.RGB_IMAGE, 100.0,
                    Gimp.LayerMode.NORMAL)
img.insert_layer(bg, None, 0)

cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
cfg.set_property("image", img)
cfg.set_property("prompt", PROMPT)
cfg.set_property("model", Gio.File.new_for_path(MODEL) if MODEL else None)
cfg.set_property("seed", SEED)
cfg.set_property("steps", STEPS)
cfg.set_property("width", SIZE)
cfg.set_property("height", SIZE)
cfg.set_property("backend", BACKEND)

say("%s %dx%d, seed %d, steps %s, backend %s, model %s, prompt %r"
    % (NAME, SIZE, SIZE, SEED, STEPS or "default", BACKEND, MODEL or "(discovered)", PROMPT))
t0 = time.monotonic()
res = proc.run(cfg)
status = res.index(0)
if status != Gimp.PDBStatusType.SUCCESS:
    why = res.index(1) if res.length() > 1 else ""
    raise RuntimeError("%s failed (%s): %s" % (NAME, status.value_nick, why))
layers = res.get_core_object_array(1)
seed = res.index(2)
say("done in %.1f s: %d layer(s), seed %d" % (time.monotonic() - t0, len(layers), seed))

# export the generated layer alone, as it is (RGBA, the image's size)
img.remove_layer(bg)
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(OUT), None)
img.delete()
if not os.path.isfile(OUT):
    raise RuntimeError("GIMP reported success but %s was not written" % OUT)
say("exported %s" % OUT)

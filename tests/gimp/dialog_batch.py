# Python-Fu side of tests/gimp/test_dialog.sh, run inside gimp-console-3.0 under Xvfb:
# opens plug-in-sd35-txt2img INTERACTIVE on a fresh 128×128 image (the dialog then defaults
# to that size) while the shell side drives the dialog with xdotool as a user would (nothing
# is pre-set: the dialog starts from the profile's settings, fresh on the first run), and
# prints what the call left in the image.
# env: SD35_DIALOG_DISPLAY=1: show the image in a display first (GUI GIMP only), so that the
# dialog has a parent window; SD35_DIALOG_PROC: the procedure (default plug-in-sd35-txt2img);
# SD35_DIALOG_RUNS: open the dialog that many times in this GIMP session (default 1);
# SD35_DIALOG_THEN_PDB=1: then call plug-in-sd35-txt2img non-interactively (as a script would)
# and print its time and the resident engine's status (loads=N: how often a model was loaded).
import os, time

img = Gimp.Image.new(128, 128, Gimp.ImageBaseType.RGB)
bg = Gimp.Layer.new(img, "bg", 128, 128, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
img.insert_layer(bg, None, 0)
if os.environ.get("SD35_DIALOG_DISPLAY") == "1":
    disp = Gimp.Display.new(img)
    Gimp.displays_flush()
before = len(img.get_layers())
print("DIALOG layers-before", before, flush=True)
proc = Gimp.get_pdb().lookup_procedure(os.environ.get("SD35_DIALOG_PROC", "plug-in-sd35-txt2img"))
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", img)
cfg.set_core_object_array("drawables", [bg])
for run in range(int(os.environ.get("SD35_DIALOG_RUNS", "1"))):
    t0 = time.monotonic()
    res = proc.run(cfg)
    status = res.index(0)
    print("DIALOG run %d status %s %.3f s" % (run + 1, status.value_nick if hasattr(status, "value_nick") else status,
                                            time.monotonic() - t0), flush=True)
if os.environ.get("SD35_DIALOG_THEN_PDB") == "1":
    pdb = Gimp.get_pdb().lookup_procedure("plug-in-sd35-txt2img")
    pc = pdb.create_config()
    pc.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    pc.set_property("image", img)
    pc.set_property("prompt", "a lighthouse at dusk")
    pc.set_property("steps", 8)
    t0 = time.monotonic()
    r = pdb.run(pc)
    print("DIALOG pdb %s %.3f s" % (r.index(0).value_nick, time.monotonic() - t0), flush=True)
    st = Gimp.get_pdb().lookup_procedure("plug-in-sd35-resident-status")
    sc = st.create_config()
    sc.set_property("unload", False)
    print("DIALOG resident " + st.run(sc).index(1), flush=True)
layers = img.get_layers()
print("DIALOG status", status.value_nick if hasattr(status, "value_nick") else status, flush=True)
print("DIALOG layers-after", len(layers), flush=True)
print("DIALOG added", len(layers) - before, flush=True)
import hashlib
for l in layers:
    print("DIALOG layer", l.get_name(), l.get_width(), l.get_height(), flush=True)
    if os.environ.get("SD35_DIALOG_PIXELS") == "1":  # a digest of each layer's pixels
        data = l.get_buffer().get(Gegl.Rectangle.new(0, 0, l.get_width(), l.get_height()), 1.0,
                                  "R'G'B'A u8", Gegl.AbyssPolicy.NONE)
        print("DIALOG pixels", hashlib.sha1(bytes(data)).hexdigest(), l.get_name(), flush=True)

# Hostile inputs through the plug-in's PDB path, run inside a headless GIMP 3 by
# tests/gimp/inside-chroot.sh (section "hostile"):
#   gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval \
#       -b 'exec(open("tests/gimp/check_hostile.py").read())' --quit
# The same classes as the unit suite's bad-input matrix (tests/unit/test_hostile.c): a model
# folder that is not a model (empty; a corrupt model file), broken tokenizer files (vocab.json
# nested a million deep, merges.txt with three fields on a line), and a "bomb" image far
# larger than the engine makes.  Each
# call must fail with GIMP_PDB_EXECUTION_ERROR and a clear one-line message, and leave the
# image as it was (same layers, same pixels).  env: SD35_TEST_MODEL (a release folder of the
# tiny golden models, symlinks), SD35_TEST_OUT (a scratch folder).
import os, shutil, time, traceback

MODEL = os.environ.get("SD35_TEST_MODEL", "")
OUT = os.environ.get("SD35_TEST_OUT") or "/tmp"
failures = []


def log(line):
    print(line, flush=True)


def check(cond, msg):
    log(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)
    return cond


def run(name, img, drawables=None, **args):
    proc = Gimp.get_pdb().lookup_procedure(name)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    if drawables is not None:
        cfg.set_core_object_array("drawables", drawables)
    for k, v in args.items():
        k = k.replace("_", "-")
        if k == "model":
            v = Gio.File.new_for_path(v)
        cfg.set_property(k, v)
    res = proc.run(cfg)
    vals = [res.index(i) for i in range(1, res.length())]
    return res.index(0), (str(vals[0]) if vals and vals[0] is not None else "")


def new_image(w, h, fill=True):
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    bg = Gimp.Layer.new(img, "bg", w, h, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    if fill:
        px = bytes((x * 7 + y * 3) % 256 for y in range(h) for x in range(w) for _ in range(3))
        bg.get_buffer().set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' u8", px)
    return img, bg


def snapshot(img):
    """Layer names and the pixels of every layer (small images only)."""
    out = []
    for l in img.get_layers():
        w, h = l.get_width(), l.get_height()
        data = bytes(l.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8",
                                        Gegl.AbyssPolicy.NONE)) if w * h <= 1 << 20 else b""
        out.append((l.get_name(), w, h, data))
    return out


def expect_refused(what, img, st, msg, before, *fragments):
    log("info %s -> %s %r" % (what, st, msg))
    check(st == Gimp.PDBStatusType.EXECUTION_ERROR, "%s: execution error (%s)" % (what, st))
    check(msg != "" and "\n" not in msg.strip() and all(f in msg for f in fragments),
          "%s: one clear line naming %s" % (what, " / ".join(fragments)))
    check(snapshot(img) == before, "%s: the image is unchanged (layers and pixels)" % what)


def model_copy(name):
    """A copy of the test model's folder (symlinks to the same files) to break one file of."""
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(MODEL, d, symlinks=True)
    return d


def section_bad_model_folder():
    img, bg = new_image(64, 48)
    before = snapshot(img)
    # a folder without any model file
    empty = os.path.join(OUT, "hostile-empty")
    os.makedirs(empty, exist_ok=True)
    st, msg = run("plug-in-sd35-txt2img", img, prompt="x", model=empty, seed=1, steps=1,
                  width=64, height=48)
    expect_refused("empty model folder", img, st, msg, before, empty, "no sd3*.safetensors")
    # a model file that is not safetensors (a JSON bomb under the model's name)
    d = model_copy("hostile-notmodel")
    os.unlink(os.path.join(d, "sd3.5_large.safetensors"))
    with open(os.path.join(d, "sd3.5_large.safetensors"), "wb") as f:
        f.write(b"\xff" * 8 + b"[" * 4096)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, 32, 32)
    st, msg = run("plug-in-sd35-img2img", img, [bg], prompt="x", model=d, seed=1, steps=1)
    expect_refused("corrupt model file (img2img)", img, st, msg, before, "sd3.5_large.safetensors")
    img.delete()


def section_bad_tokenizer():
    img, bg = new_image(64, 48)
    before = snapshot(img)
    d = model_copy("hostile-tokenizer")
    for sub in ("tokenizer", "tokenizer_2"):
        p = os.path.join(d, sub, "vocab.json")
        os.unlink(p)
        with open(p, "w") as f:
            f.write("[" * 1000000)  # a stack overflow for a recursive parser
    t0 = time.monotonic()
    st, msg = run("plug-in-sd35-txt2img", img, prompt="x", model=d, seed=1, steps=1,
                  width=64, height=48)
    expect_refused("vocab.json nested a million deep", img, st, msg, before, "vocab.json",
                   "nested deeper than 64 levels")
    log("info refused in %.2f s" % (time.monotonic() - t0))
    # merges.txt with a line of three fields
    d = model_copy("hostile-merges")
    for sub in ("tokenizer", "tokenizer_2"):
        src = os.path.realpath(os.path.join(d, sub, "merges.txt"))
        lines = open(src, encoding="utf-8").read().split("\n")
        lines[1] += " extra"
        os.unlink(os.path.join(d, sub, "merges.txt"))
        with open(os.path.join(d, sub, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    st, msg = run("plug-in-sd35-txt2img", img, prompt="x", model=d, seed=1, steps=1,
                  width=64, height=48)
    expect_refused("merges.txt line of three fields", img, st, msg, before, "merges.txt",
                   "line 2: three or more fields")
    img.delete()


def section_bomb_image():
    # 30000×30000: GIMP keeps an unpainted layer as empty tiles; read as RGB it is 2.7 GB
    img, bg = new_image(30000, 30000, fill=False)
    n0 = [l.get_name() for l in img.get_layers()]
    t0 = time.monotonic()
    st, msg = run("plug-in-sd35-img2img", img, [bg], prompt="x", model=MODEL, seed=1, steps=1,
                  width=512, height=512)
    dt = time.monotonic() - t0
    log("info bomb image -> %s %r in %.2f s" % (st, msg, dt))
    check(st == Gimp.PDBStatusType.EXECUTION_ERROR, "bomb image: execution error (%s)" % st)
    check("30000×30000" in msg and "8192×8192" in msg and "\n" not in msg.strip(),
          "bomb image: one line naming its size and the limit")
    check([l.get_name() for l in img.get_layers()] == n0, "bomb image: no layer added")
    check(dt < 30, "bomb image: refused before its pixels are read (%.2f s)" % dt)
    img.delete()


SECTIONS = [("bad-model-folder", section_bad_model_folder),
            ("bad-tokenizer", section_bad_tokenizer),
            ("bomb-image", section_bomb_image)]

for name, fn in SECTIONS:
    log("info --- hostile: %s" % name)
    try:
        fn()
    except Exception:
        check(False, "section %s raised:\n%s" % (name, traceback.format_exc()))

log("RESULT: %s (%d failed)" % ("FAIL" if failures else "PASS", len(failures)))
if failures:
    raise AssertionError("%d checks failed" % len(failures))

# Hostile inputs through the plug-in's PDB path, run inside a headless GIMP 3 by
# tests/gimp/inside-chroot.sh (section "hostile"):
#   gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval \
#       -b 'exec(open("tests/gimp/pdb_check.py").read()); exec(open("tests/gimp/check_hostile.py").read())'
# The same classes as the unit suite's bad-input matrix (tests/unit/test_hostile.c): a model
# folder that is not a model (empty; a corrupt model file), broken tokenizer files (vocab.json
# nested a million deep, merges.txt with three fields on a line), and a "bomb" image far
# larger than the engine makes.  Each
# call must fail with GIMP_PDB_EXECUTION_ERROR and a clear one-line message, and leave the
# image as it was (same layers, same pixels).  env: SD35_TEST_MODEL (a release folder of the
# tiny golden models, symlinks), SD35_TEST_OUT (a scratch folder).
import os, shutil, time

MODEL = os.environ.get("SD35_TEST_MODEL", "")
OUT = os.environ.get("SD35_TEST_OUT") or "/tmp"


def refused_run(name, img, drawables=None, **args):
    """run() for a call that must fail: (status, its error message)."""
    st, vals = run(name, img, drawables, **args)
    return st, (str(vals[0]) if vals and vals[0] is not None else "")


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
    st, msg = refused_run("plug-in-sd35-txt2img", img, prompt="x", model=empty, seed=1, steps=1,
                  width=64, height=48)
    expect_refused("empty model folder", img, st, msg, before, empty, "no sd3*.safetensors")
    # a model file that is not safetensors (a JSON bomb under the model's name)
    d = model_copy("hostile-notmodel")
    os.unlink(os.path.join(d, "sd3.5_large.safetensors"))
    with open(os.path.join(d, "sd3.5_large.safetensors"), "wb") as f:
        f.write(b"\xff" * 8 + b"[" * 4096)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, 32, 32)
    st, msg = refused_run("plug-in-sd35-img2img", img, [bg], prompt="x", model=d, seed=1, steps=1)
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
    st, msg = refused_run("plug-in-sd35-txt2img", img, prompt="x", model=d, seed=1, steps=1,
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
    st, msg = refused_run("plug-in-sd35-txt2img", img, prompt="x", model=d, seed=1, steps=1,
                  width=64, height=48)
    expect_refused("merges.txt line of three fields", img, st, msg, before, "merges.txt",
                   "line 2: three or more fields")
    img.delete()


def section_bomb_image():
    # 30000×30000: GIMP keeps an unpainted layer as empty tiles; read as RGB it is 2.7 GB
    img, bg = new_image(30000, 30000, fill=False)
    n0 = [l.get_name() for l in img.get_layers()]
    t0 = time.monotonic()
    st, msg = refused_run("plug-in-sd35-img2img", img, [bg], prompt="x", model=MODEL, seed=1, steps=1,
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

run_sections(SECTIONS)

# Helpers shared by the Python-Fu checks (check_plugin.py, check_hostile.py), executed before
# each of them in the same headless GIMP 3 by tests/gimp/inside-chroot.sh:
#   gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval \
#       -b 'exec(open("tests/gimp/pdb_check.py").read()); exec(open("tests/gimp/check_plugin.py").read())'
# (python-fu-eval provides Gimp, Gegl, Babl, Gio, GLib.)  Each check prints "ok   ...",
# "FAIL ..." or "info ..."; run_sections ends with RESULT: PASS or FAIL and raises on a
# failure, so gimp-console exits non-zero.
import traceback

failures = []


def log(line):
    print(line, flush=True)


def check(cond, msg):
    log(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)
    return cond


def pdb_proc(name):
    return Gimp.get_pdb().lookup_procedure(name)


def run(name, img, drawables=None, **args):
    """Runs a procedure non-interactively; returns (status, [values...])."""
    proc = pdb_proc(name)
    cfg = proc.create_config()
    if "run-mode" in [a.name for a in proc.get_arguments()]:
        cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if img is not None:
        cfg.set_property("image", img)
    if drawables is not None:
        cfg.set_core_object_array("drawables", drawables)
    for k, v in args.items():
        k = k.replace("_", "-")
        if k == "model":
            v = Gio.File.new_for_path(v) if v else None
        cfg.set_property(k, v)
    res = proc.run(cfg)
    st = res.index(0)
    if st != Gimp.PDBStatusType.SUCCESS:
        return st, [res.index(i) for i in range(1, res.length())]
    # an object array arrives boxed: unbox it with get_core_object_array
    specs = proc.get_return_values()
    return st, [res.get_core_object_array(i) if specs[i - 1].value_type.name == "GimpCoreObjectArray"
                else res.index(i) for i in range(1, res.length())]


def new_image(w, h, base=None, precision=None, fill=True):
    base = base if base is not None else Gimp.ImageBaseType.RGB
    if precision is None:
        img = Gimp.Image.new(w, h, base)
    else:
        img = Gimp.Image.new_with_precision(w, h, base, precision)
    t = Gimp.ImageType.GRAY_IMAGE if base == Gimp.ImageBaseType.GRAY else Gimp.ImageType.RGB_IMAGE
    bg = Gimp.Layer.new(img, "bg", w, h, t, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    if fill:  # a smooth, non-constant picture: img2img has something to start from
        px = bytearray()
        for y in range(h):
            for x in range(w):
                px += bytes(((x * 255) // max(w - 1, 1), (y * 255) // max(h - 1, 1), 128))
        bg.get_buffer().set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' u8", bytes(px))
        bg.update(0, 0, w, h)
    return img, bg


def run_sections(sections, only=()):
    """Runs each (name, fn) of sections (those named in only, when given), a raising section
    counted as a failure, then prints the RESULT line."""
    for name, fn in sections:
        if only and name not in only:
            continue
        log("info --- %s" % name)
        try:
            fn()
        except Exception:
            check(False, "section %s raised:\n%s" % (name, traceback.format_exc()))
    log("RESULT: %s (%d failed)" % ("FAIL" if failures else "PASS", len(failures)))
    if failures:
        raise AssertionError("%d checks failed" % len(failures))

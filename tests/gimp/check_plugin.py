# Python-Fu checks of the gimp-sd35 plug-in, run inside a headless GIMP 3 by run-gimp-tests:
#   gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval \
#       -b 'exec(open("tests/gimp/pdb_check.py").read()); exec(open("tests/gimp/check_plugin.py").read())'
# (python-fu-eval provides Gimp, Gegl, Babl, Gio, GLib.)  env: SD35_TEST_MODEL (a release
# folder of the tiny golden models), SD35_CLI (the sd35 binary for the reference pixels),
# SD35_TEST_OUT (a scratch folder), SD35_TEST_ONLY (comma-separated section names).
# Each check prints "ok   ...", "FAIL ..." or "info ..."; any FAIL makes the batch fail
# (gimp-console then exits non-zero) and the last line says RESULT: PASS or FAIL.
import json, os, subprocess, tempfile, time

MODEL = os.environ.get("SD35_TEST_MODEL", "")
CLI = os.environ.get("SD35_CLI", "")
OUT = os.environ.get("SD35_TEST_OUT") or tempfile.mkdtemp()
ONLY = [s for s in os.environ.get("SD35_TEST_ONLY", "").split(",") if s]
PROMPT, SEED, STEPS = "a red fox in the snow", 1234, 2
os.makedirs(OUT, exist_ok=True)


def txt2img(img, drawables=None, **kw):
    args = dict(prompt=PROMPT, model=MODEL, seed=SEED, steps=STEPS)
    args.update(kw)
    return run("plug-in-sd35-txt2img", img, drawables, **args)


def pixels(drawable, fmt="R'G'B'A u8", rect=None):
    if rect is None:
        rect = (0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(*rect), 1.0, fmt,
                                           Gegl.AbyssPolicy.NONE))


def max_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) and a else 999


def parasite_json(obj):
    p = obj.get_parasite("sd35-settings")
    if p is None:
        return None
    data = p.get_data()
    return json.loads(bytes(data).decode("utf-8"))


def cli_pixels(w, h, seed, path):
    """The CLI's picture for the same settings, as R'G'B'A u8 (alpha 255)."""
    cmd = [CLI, "txt2img", "--model", MODEL, "--prompt", PROMPT, "--seed", str(seed),
           "--steps", str(STEPS), "--width", str(w), "--height", str(h), "--out", path, "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        log("info CLI: %s -> %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-400:]))
        return None
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    data = pixels(img.get_layers()[0])
    img.delete()
    return data


# ---------------------------------------------------------------------------------------
def section_registration():
    want = ["run-mode", "image", "drawables", "prompt", "negative-prompt", "model", "steps",
            "guidance", "seed", "width", "height", "sampler", "shift", "slg-scale", "use-t5",
            "batch-count", "backend", "prompt-weights", "loras"]
    for name, extra in (("plug-in-sd35-txt2img", []),
                        ("plug-in-sd35-img2img", ["strength", "use-selection-mask",
                                                  "native-resolution", "context-margin"])):
        p = pdb_proc(name)
        if not check(p is not None, "%s is registered" % name):
            continue
        args = [a.name for a in p.get_arguments()]
        check(args == want + extra, "%s arguments %s" % (name, args))
        rets = [a.name for a in p.get_return_values()]
        check(rets == ["layers", "seed"], "%s return values %s" % (name, rets))
        check("<Image>/Filters/Render/Stable Diffusion 3.5" in p.get_menu_paths(),
              "%s menu %s" % (name, p.get_menu_paths()))
        check(bool(p.get_blurb()) and bool(p.get_help()) and bool(p.get_authors()),
              "%s has documentation, help and attribution" % name)
        cfg = p.create_config()
        check(cfg.get_property("sampler") == "default" and cfg.get_property("backend") == "auto",
              "%s choice defaults sampler=%s backend=%s" % (name, cfg.get_property("sampler"),
                                                          cfg.get_property("backend")))
    ext = pdb_proc("extension-sd35")
    check(ext is not None and ext.get_proc_type() == Gimp.PDBProcType.PERSISTENT,
          "extension-sd35 is a persistent procedure")
    for name in ("plug-in-sd35-resident-txt2img", "plug-in-sd35-resident-img2img",
                 "plug-in-sd35-resident-status"):
        p = pdb_proc(name)
        check(p is not None and p.get_proc_type() == Gimp.PDBProcType.TEMPORARY,
              "%s served by the running extension" % name)


# What the plug-in registers and says, per language: the German strings are the msgstr of
# po/de.po for these msgids (SD35_EXPECT_LANG says which to expect; inside-chroot.sh runs
# this section once more under LANGUAGE=de with a German locale).
I18N = {
    "en": {"txt2img-label": "_Text to Image...", "img2img-label": "_Image to Image...",
           "blurb": "Render a new layer from a text prompt with Stable Diffusion 3.5",
           "prompt-nick": "_Prompt", "prompt-blurb": "What the image shows",
           "sampler-default": "Model default", "layers-blurb": "The new layers, top first",
           "strength-error": "strength must be above 0 (it is 0): 0 would change nothing"},
    "de": {"txt2img-label": "_Text zu Bild …", "img2img-label": "_Bild zu Bild …",
           "blurb": "Eine neue Ebene aus einem Text-Prompt mit Stable Diffusion 3.5 erzeugen",
           "prompt-nick": "_Prompt", "prompt-blurb": "Was das Bild zeigt",
           "sampler-default": "Vorgabe des Modells",
           "layers-blurb": "Die neuen Ebenen, oberste zuerst",
           "strength-error": "Die Stärke muss über 0 liegen (sie ist 0): 0 würde nichts ändern"},
}


def section_i18n():
    """GIMP starts the plug-in in the user's language; the plug-in's set_i18n binds its
    catalogue (locale/ beside the binary), so the menu label, documentation, argument texts
    and choice labels it registers come back through the PDB translated, and its run-time
    errors are translated too."""
    lang = os.environ.get("SD35_EXPECT_LANG", "en")
    want = I18N[lang]
    log("info i18n: expecting %s (LANGUAGE=%s LANG=%s)" % (lang, os.environ.get("LANGUAGE"),
                                                         os.environ.get("LANG")))
    t2i, i2i = pdb_proc("plug-in-sd35-txt2img"), pdb_proc("plug-in-sd35-img2img")
    check(t2i.get_menu_label() == want["txt2img-label"],
          "[%s] txt2img menu label %r" % (lang, t2i.get_menu_label()))
    check(i2i.get_menu_label() == want["img2img-label"],
          "[%s] img2img menu label %r" % (lang, i2i.get_menu_label()))
    check(t2i.get_blurb() == want["blurb"], "[%s] txt2img blurb %r" % (lang, t2i.get_blurb()))
    args = {a.name: a for a in t2i.get_arguments()}
    prompt = args["prompt"]
    check(prompt.get_nick() == want["prompt-nick"] and prompt.get_blurb() == want["prompt-blurb"],
          "[%s] argument 'prompt': nick %r, blurb %r" % (lang, prompt.get_nick(), prompt.get_blurb()))
    label = Gimp.param_spec_choice_get_choice(args["sampler"]).get_label("default")
    check(label == want["sampler-default"], "[%s] sampler choice 'default' labelled %r" % (lang, label))
    rets = {a.name: a for a in t2i.get_return_values()}
    check(rets["layers"].get_blurb() == want["layers-blurb"],
          "[%s] return value 'layers' blurb %r" % (lang, rets["layers"].get_blurb()))
    # at run time, in the process that serves the call: a calling error of the plug-in's own
    img, bg = new_image(32, 32)
    st, vals = run("plug-in-sd35-img2img", img, [bg], prompt=PROMPT, model=MODEL, steps=1,
                   strength=0.0)
    msg = str(vals[0]) if vals else ""
    check(st == Gimp.PDBStatusType.CALLING_ERROR and msg == want["strength-error"],
          "[%s] img2img strength 0: %s %r" % (lang, st, msg))
    img.delete()


def section_errors():
    img, bg = new_image(64, 48)
    n0 = len(img.get_layers())
    st, vals = txt2img(img, model="/nonexistent/sd3.5_large.safetensors", width=64, height=48)
    msg = str(vals[0]) if vals else ""
    log("info bad model -> %s %r" % (st, msg))
    check(st == Gimp.PDBStatusType.EXECUTION_ERROR, "bad model path: execution error (%s)" % st)
    check("/nonexistent" in msg or "model" in msg.lower(), "bad model path: message names it")
    check(len(img.get_layers()) == n0, "bad model path: layer count unchanged")
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 20, 20)
    st, vals = run("plug-in-sd35-img2img", img, [bg], prompt=PROMPT,
                   model="/nonexistent/sd3.5_large.safetensors", seed=1, steps=1)
    check(st == Gimp.PDBStatusType.EXECUTION_ERROR and len(img.get_layers()) == n0,
          "img2img with a bad model: error, layer count unchanged (%s)" % st)
    img.delete()


def section_txt2img():
    img, bg = new_image(100, 80)
    t0 = time.monotonic()
    st, vals = txt2img(img, width=64, height=48)
    dt = time.monotonic() - t0
    if not check(st == Gimp.PDBStatusType.SUCCESS, "txt2img 64x48 succeeds (%s %s)" % (st, vals)):
        return
    layers, seed = vals
    log("info txt2img 64x48 took %.2f s" % dt)
    check(len(layers) == 1 and len(img.get_layers()) == 2, "exactly one new layer")
    layer = layers[0]
    check((layer.get_width(), layer.get_height()) == (64, 48), "layer is 64x48")
    check(layer.get_offsets()[1:] == (0, 0), "no selection: layer at the origin")
    check(layer.has_alpha() and layer.get_name().startswith(PROMPT), "RGBA, named after the prompt: %r" % layer.get_name())
    check(seed == SEED, "returned seed %d" % seed)
    # width/height 0 and no selection: the image's size rounded to 16 (100x80 -> 96x80);
    # seed -1: a random seed, reported
    st, vals = txt2img(img, seed=-1, width=0, height=0)
    if check(st == Gimp.PDBStatusType.SUCCESS, "txt2img with size 0 and seed -1 succeeds"):
        l0 = vals[0][0]
        check((l0.get_width(), l0.get_height()) == (96, 80), "size 0: the image's, rounded to 16: %dx%d"
              % (l0.get_width(), l0.get_height()))
        check(vals[1] >= 0 and parasite_json(l0)["seed"] == vals[1],
              "seed -1: the random seed used (%d) is returned and recorded" % vals[1])
    # no model given: the engine discovers one as the CLI does ($SD35_MODEL here)
    if os.environ.get("SD35_MODEL"):
        st, vals = txt2img(img, model="", width=32, height=32)
        check(st == Gimp.PDBStatusType.SUCCESS and vals[0][0].get_width() == 32,
              "empty model: found through $SD35_MODEL (%s)" % st)
    got = pixels(layer)
    ref = cli_pixels(64, 48, SEED, os.path.join(OUT, "cli-64x48.png"))
    if check(ref is not None, "sd35 txt2img ran for the reference"):
        d = max_diff(got, ref)
        check(d <= 1, "pixels equal sd35 txt2img with the same settings: max |diff| = %d (<= 1)" % d)
    img.delete()


def section_selection_and_batch():
    img, bg = new_image(200, 150)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 40, 30, 64, 48)
    st, vals = txt2img(img, batch_count=2, seed=77)
    if not check(st == Gimp.PDBStatusType.SUCCESS, "txt2img batch-count 2 succeeds (%s %s)" % (st, vals)):
        return
    layers, seed = vals
    check(len(layers) == 2 and len(img.get_layers()) == 3, "two new layers")
    seeds = [parasite_json(l)["seed"] for l in layers]
    check(seeds == [77, 78], "layer seeds %s == [77, 78]" % seeds)
    for l in layers:
        check(l.get_offsets()[1:] == (40, 30) and (l.get_width(), l.get_height()) == (64, 48),
              "layer over the selection box: offset %s size %dx%d" % (l.get_offsets()[1:], l.get_width(), l.get_height()))
    check(max_diff(pixels(layers[0]), pixels(layers[1])) > 0, "different seeds, different pictures")
    # a selection whose size is no multiple of 16: generated at 48x32, scaled to 50x30
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 5, 7, 50, 30)
    st, vals = txt2img(img, seed=5)
    check(st == Gimp.PDBStatusType.SUCCESS and (vals[0][0].get_width(), vals[0][0].get_height()) == (50, 30)
          and vals[0][0].get_offsets()[1:] == (5, 7), "50x30 selection: layer scaled to the box")
    img.delete()


def section_img2img():
    img, bg = new_image(200, 150)
    before = pixels(bg)
    n0 = len(img.get_layers())
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 40, 30, 64, 48)
    st, vals = run("plug-in-sd35-img2img", img, [bg], prompt=PROMPT, model=MODEL, seed=3,
                   steps=STEPS, strength=0.6, native_resolution=False)
    if not check(st == Gimp.PDBStatusType.SUCCESS, "img2img on a 64x48 selection succeeds (%s %s)" % (st, vals)):
        return
    l = vals[0][0]
    check(len(img.get_layers()) == n0 + 1, "one new layer")
    check(l.get_offsets()[1:] == (40, 30) and (l.get_width(), l.get_height()) == (64, 48),
          "img2img layer at the selection: offset %s size %dx%d" % (l.get_offsets()[1:], l.get_width(), l.get_height()))
    check(l.get_mask() is None, "no mask unless asked")
    check(pixels(bg) == before, "the source layer is untouched")

    # with use-selection-mask: an ellipse inside the same box
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 30, 64, 48)
    st, vals = run("plug-in-sd35-img2img", img, [bg], prompt=PROMPT, model=MODEL, seed=3,
                   steps=STEPS, strength=0.6, use_selection_mask=True, native_resolution=False)
    if not check(st == Gimp.PDBStatusType.SUCCESS, "img2img with use-selection-mask succeeds (%s %s)" % (st, vals)):
        return
    l = vals[0][0]
    check(l.get_mask() is not None, "the new layer has a mask")
    sel = pixels(img.get_selection(), "Y u8", (40, 30, 64, 48))
    mask = pixels(l.get_mask(), "Y u8")
    check(max_diff(sel, mask) <= 1, "the layer mask is the selection (max |diff| %d)" % max_diff(sel, mask))
    l.set_visible(True)
    for other in img.get_layers():
        if other.get_id() not in (l.get_id(), bg.get_id()):
            other.set_visible(False)
    dup = img.duplicate()
    flat = dup.flatten()
    comp = pixels(flat, "R'G'B'A u8", (40, 30, 64, 48))
    orig = pixels(bg, "R'G'B'A u8", (40, 30, 64, 48))
    outside = [i for i in range(64 * 48) if sel[i] == 0]
    diff_out = max([abs(comp[4 * i + c] - orig[4 * i + c]) for i in outside for c in range(3)] or [0])
    inside = [i for i in range(64 * 48) if sel[i] == 255]
    diff_in = max([abs(comp[4 * i + c] - orig[4 * i + c]) for i in inside for c in range(3)] or [0])
    check(len(outside) > 100 and diff_out == 0,
          "pixels outside the mask untouched (%d px, max |diff| %d)" % (len(outside), diff_out))
    check(diff_in > 0, "pixels inside the mask changed (max |diff| %d)" % diff_in)
    dup.delete()
    img.delete()


def section_inpaint():
    """img2img of a small selection at native resolution: a 64x48 selection in a 1024x768
    image is worked on at a larger size (the context around it, scaled up; the test asks for
    a small working size: the tiny test model stops at 192x192, the default is ~1 MP), the layer covers only the
    feathered selection, and the picture outside the feathered mask is unchanged."""
    img, bg = new_image(1024, 768)
    before = pixels(bg)
    n0 = len(img.get_layers())
    sx, sy, sw, sh = 480, 360, 64, 48
    img.select_rectangle(Gimp.ChannelOps.REPLACE, sx, sy, sw, sh)
    st, vals = run("plug-in-sd35-img2img", img, [bg], prompt=PROMPT, model=MODEL, seed=3,
                   steps=STEPS, strength=0.7, width=176, height=160, use_selection_mask=True)
    if not check(st == Gimp.PDBStatusType.SUCCESS,
                 "img2img at native resolution on a 64x48 selection succeeds (%s %s)" % (st, vals)):
        return
    l = vals[0][0]
    check(len(img.get_layers()) == n0 + 1, "one new layer")
    s = parasite_json(l) or {}
    nr = s.get("native-resolution") or {}
    ctx, work = nr.get("context", [0, 0, 0, 0]), nr.get("working-size", [0, 0])
    log("info settings: %s" % json.dumps(nr))
    check(work == [176, 160] and work[0] * work[1] > 4 * sw * sh,
          "generated at the working size %s, larger than the 64x48 selection" % work)
    check(ctx[0] < sx and ctx[1] < sy and ctx[0] + ctx[2] > sx + sw and ctx[1] + ctx[3] > sy + sh,
          "the context %s surrounds the selection" % ctx)
    f = nr.get("feather", -1)
    lx, ly = l.get_offsets()[1:]
    lw, lh = l.get_width(), l.get_height()
    check(f >= 1 and (lx, ly, lw, lh) == (sx - f, sy - f, sw + 2 * f, sh + 2 * f),
          "the layer covers only the feathered selection: (%d,%d) %dx%d, feather %d"
          % (lx, ly, lw, lh, f))
    check(l.get_mask() is not None, "the layer's mask is the feathered selection")
    check(pixels(bg) == before, "the source layer is untouched")
    # the composite: unchanged wherever the layer mask is 0 (and outside the layer)
    for other in img.get_layers():
        other.set_visible(other.get_id() in (l.get_id(), bg.get_id()))
    dup = img.duplicate()
    flat = dup.flatten()
    rx, ry, rw, rh = lx - 8, ly - 8, lw + 16, lh + 16
    comp = pixels(flat, "R'G'B'A u8", (rx, ry, rw, rh))
    orig = pixels(bg, "R'G'B'A u8", (rx, ry, rw, rh))
    mask = pixels(l.get_mask(), "Y u8")
    def mask_at(x, y):
        x, y = x - lx, y - ly
        return mask[y * lw + x] if 0 <= x < lw and 0 <= y < lh else 0
    out_d, in_d, n_out = 0, 0, 0
    for j in range(rh):
        for i in range(rw):
            m = mask_at(rx + i, ry + j)
            d = max(abs(comp[4 * (j * rw + i) + c] - orig[4 * (j * rw + i) + c]) for c in range(3))
            if m == 0:
                out_d, n_out = max(out_d, d), n_out + 1
            elif m == 255:
                in_d = max(in_d, d)
    check(n_out > 1000 and out_d == 0,
          "pixels outside the feathered mask unchanged (%d px, max |diff| %d)" % (n_out, out_d))
    check(in_d > 0, "pixels inside changed (max |diff| %d)" % in_d)
    far = pixels(flat, "R'G'B'A u8", (0, 0, 1024, 300))
    check(far == pixels(bg, "R'G'B'A u8", (0, 0, 1024, 300)), "the rest of the image unchanged")
    dup.delete()
    img.delete()


def section_precision():
    ref_img, _ = new_image(64, 48)
    st, vals = txt2img(ref_img, width=64, height=48)
    if not check(st == Gimp.PDBStatusType.SUCCESS, "8-bit reference run"):
        return
    ref = pixels(vals[0][0])
    for prec in ("U16_NON_LINEAR", "U16_LINEAR", "U32_LINEAR", "HALF_LINEAR", "FLOAT_LINEAR",
                 "FLOAT_NON_LINEAR"):
        img, _ = new_image(64, 48, precision=getattr(Gimp.Precision, prec))
        st, vals = txt2img(img, width=64, height=48)
        if check(st == Gimp.PDBStatusType.SUCCESS, "%s image: txt2img succeeds" % prec):
            d = max_diff(pixels(vals[0][0]), ref)
            check(d <= 1, "%s image: same picture as 8-bit (max |diff| %d)" % (prec, d))
        img.delete()
    # grayscale: the layer is GRAYA and equals GIMP's own conversion of the RGB result
    gimg, _ = new_image(64, 48, base=Gimp.ImageBaseType.GRAY)
    st, vals = txt2img(gimg, width=64, height=48)
    if check(st == Gimp.PDBStatusType.SUCCESS, "grayscale image: txt2img succeeds"):
        gl = vals[0][0]
        check(gl.is_gray() and gl.has_alpha(), "grayscale image: layer is GRAYA")
        ref_img.convert_grayscale()
        conv = [l for l in ref_img.get_layers() if l.get_name().startswith(PROMPT)][0]
        d = max_diff(pixels(gl, "Y'A u8"), pixels(conv, "Y'A u8"))
        check(d <= 1, "grayscale image: equals GIMP's grayscale conversion (max |diff| %d)" % d)
        gbg = [l for l in gimg.get_layers() if l.get_name() == "bg"][0]
        gimg.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, 32, 32)
        st, vals = run("plug-in-sd35-img2img", gimg, [gbg], prompt=PROMPT, model=MODEL, seed=3,
                       steps=STEPS, strength=0.5, use_selection_mask=True,
                       native_resolution=False)
        check(st == Gimp.PDBStatusType.SUCCESS and vals[0][0].is_gray() and
              vals[0][0].get_mask() is not None, "grayscale image: masked img2img works (%s)" % st)
    gimg.delete()
    # another RGB space (Adobe RGB): the layer holds the engine's numbers in that space
    aimg, _ = new_image(64, 48)
    aimg.set_color_profile(Gimp.ColorProfile.new_rgb_adobe())
    st, vals = txt2img(aimg, width=64, height=48)
    if check(st == Gimp.PDBStatusType.SUCCESS, "Adobe RGB image: txt2img succeeds"):
        al = vals[0][0]
        fmt = Babl.format_with_space("R'G'B'A u8", al.get_format())
        d = 0
        for x, y in ((0, 0), (5, 3), (31, 17), (63, 47), (40, 20)):
            got = bytes(al.get_pixel(x, y).get_bytes(fmt).get_data())
            d = max(d, max_diff(got, ref[(y * 64 + x) * 4:(y * 64 + x) * 4 + 4]))
        check(d <= 1, "Adobe RGB image: R'G'B' in the image's space equal the sRGB run's (max |diff| %d)" % d)
    aimg.delete()
    ref_img.delete()


def section_parasite():
    img, _ = new_image(64, 48)
    st, vals = txt2img(img, width=64, height=48, negative_prompt="blurry", guidance=3.5, sampler="euler")
    if not check(st == Gimp.PDBStatusType.SUCCESS, "txt2img for the parasite"):
        return
    j = parasite_json(img)
    log("info sd35-settings: %s" % json.dumps(j))
    want = {"prompt": PROMPT, "negative": "blurry", "seed": SEED, "steps": STEPS,
            "guidance": 3.5, "sampler": "euler"}
    check(j is not None and all(j.get(k) == v for k, v in want.items()), "image parasite has the settings")
    check(j is not None and j.get("model") == "sd3.5_large.safetensors" and j.get("engine-version"),
          "parasite names model %r and engine %r" % (j and j.get("model"), j and j.get("engine-version")))
    xcf = os.path.join(OUT, "parasite.xcf")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(xcf), None)
    back = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(xcf))
    check(parasite_json(back) == j, "image parasite survives an XCF round-trip")
    top = [l for l in back.get_layers() if l.get_name().startswith(PROMPT)]
    check(top and parasite_json(top[0]) == j, "layer parasite survives an XCF round-trip")
    back.delete()
    img.delete()


def section_lora():
    """A LoRA through the PDB changes the generation, strength 0 does not, the settings
    parasite records it, and switching it on the resident engine loads no model."""
    src = os.environ.get("SD35_SOURCE_DIR", "")
    kohya = os.path.join(src, "tests", "data", "lora", "kohya.safetensors")
    if not check(os.path.exists(kohya), "LoRA fixture %s" % kohya):
        return
    img, _ = new_image(64, 48)
    outs, loads, times = [], [], []
    for loras in ([], [kohya + ":0.8"], [kohya + ":0"], [kohya + ":0.5"]):
        t0 = time.monotonic()
        st, vals = txt2img(img, width=64, height=48, loras=loras)
        times.append(time.monotonic() - t0)
        if not check(st == Gimp.PDBStatusType.SUCCESS, "txt2img with loras=%r (%s %s)" % (loras, st, vals)):
            return
        outs.append(pixels(vals[0][0]))
        s = resident_status() if pdb_proc("plug-in-sd35-resident-status") else {}
        loads.append(s.get("loads"))
        if loras:
            j = parasite_json(vals[0][0])
            check(j is not None and j.get("loras") == loras, "layer parasite records loras %r" % (j and j.get("loras")))
    check(max_diff(outs[0], outs[1]) > 0, "a LoRA at 0.8 changes the layer (max |diff| %d)" % max_diff(outs[0], outs[1]))
    check(max_diff(outs[0], outs[2]) == 0, "the LoRA at strength 0 gives the layer without LoRA")
    check(max_diff(outs[1], outs[3]) > 0, "strength 0.5 differs from 0.8")
    check(loads[0] is not None and len(set(loads)) == 1,
          "LoRA and strength switches on the resident engine load no model (load count %s)" % loads)
    log("info LoRA calls (none, 0.8, 0, 0.5): %s s" % ", ".join("%.3f" % t for t in times))
    st, vals = txt2img(img, width=64, height=48, loras=["x.safetensors:abc:"])
    check(st != Gimp.PDBStatusType.SUCCESS, "a missing LoRA file fails the call (%s)" % st)
    img.delete()


def resident_status(unload=False):
    st, vals = run("plug-in-sd35-resident-status", None, None, unload=unload)
    return dict(kv.split("=", 1) for kv in vals[0].split()) if st == Gimp.PDBStatusType.SUCCESS else {}


def section_resident():
    if not check(pdb_proc("plug-in-sd35-resident-status") is not None, "resident extension running"):
        return
    s = resident_status(unload=True)
    check(s.get("loaded") == "0", "unload frees the resident model")
    img, _ = new_image(64, 48)
    times, loads = [], []
    for i in range(3):
        t0 = time.monotonic()
        st, vals = txt2img(img, width=64, height=48)
        times.append(time.monotonic() - t0)
        s = resident_status()
        loads.append(int(s.get("loads", "-1")))
        check(st == Gimp.PDBStatusType.SUCCESS, "resident call %d succeeds" % (i + 1))
        log("info resident call %d: %.3f s, %s" % (i + 1, times[-1], " ".join("%s=%s" % kv for kv in s.items())))
    check(loads[1] == loads[0] and loads[2] == loads[0],
          "calls 2 and 3 reused the engine loaded by call 1 (load count %s)" % loads)
    log("info LATENCY first call %.3f s, second %.3f s, third %.3f s (load %.3f s)"
        % (times[0], times[1], times[2], float(s.get("last-load-s", "nan"))))
    img.delete()


def forwarder_pids(resident_pid):
    """The gimp-sd35 processes other than the resident one: the short-lived processes of the
    public procedures (GIMP starts every plug-in as its binary's path)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == resident_pid:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"gimp-sd35":
            pids.append(int(d))
    return pids


def section_cancel():
    """Cancel from GIMP's progress bar: GIMP ends the process that owns the progress of the
    call, which is the short-lived process of plug-in-sd35-txt2img, not the resident one.
    Here that process is killed mid-run as GIMP would; the resident engine must stop the job,
    stay loaded, and serve the next call without loading the model again."""
    s = resident_status()
    if not check("pid" in s, "resident status gives its pid"):
        return
    import signal, threading
    img, _ = new_image(64, 48)
    st, _ = txt2img(img, width=64, height=48)  # the model is loaded
    s0 = resident_status()
    n0 = len(img.get_layers())
    killed = []

    def kill_forwarder():
        for pid in forwarder_pids(int(s0["pid"])):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Timer(1.5, kill_forwarder)
    killer.start()
    t0 = time.monotonic()
    st, vals = txt2img(img, width=128, height=128, steps=1000)  # runs well past 1.5 s
    killer.cancel()
    dt = time.monotonic() - t0
    log("info progress owner killed after %.2f s (pids %s): %s %r" % (dt, killed, st, vals))
    check(killed and st != Gimp.PDBStatusType.SUCCESS, "cancelled mid-run: the call did not succeed")
    check(len(img.get_layers()) == n0, "cancelled mid-run: nothing inserted")
    t1 = time.monotonic()
    st, vals = txt2img(img, width=64, height=48)
    dt2 = time.monotonic() - t1
    s1 = resident_status()
    check(st == Gimp.PDBStatusType.SUCCESS and len(img.get_layers()) == n0 + 1,
          "the next call works (%s, %.2f s)" % (st, dt2))
    check(s1.get("pid") == s0.get("pid") and s1.get("loaded") == "1" and
          s1.get("loads") == s0.get("loads"),
          "the resident process lived on and did not load the model again (before %s, after %s)"
          % (s0, s1))
    img.delete()


def section_crash():
    """Runs last: kills the resident extension in the middle of a call (what GIMP does when
    the user cancels its progress).  Nothing may be inserted; the next call loads per call."""
    s = resident_status()
    if not check("pid" in s, "resident status gives its pid"):
        return
    import signal, threading
    img, _ = new_image(64, 48)
    n0 = len(img.get_layers())
    killer = threading.Timer(1.5, os.kill, (int(s["pid"]), signal.SIGKILL))
    killer.start()
    t0 = time.monotonic()
    st, vals = txt2img(img, width=128, height=128, steps=1000)  # runs well past 1.5 s
    killer.cancel()
    log("info call killed after %.2f s: %s %r" % (time.monotonic() - t0, st, vals))
    check(st == Gimp.PDBStatusType.EXECUTION_ERROR and "resident" in str(vals[0]),
          "killed mid-run: the call fails and says why (%s)" % st)
    check(len(img.get_layers()) == n0, "killed mid-run: nothing inserted")
    # procedure_exists asks GIMP; lookup_procedure may answer from libgimp's cache
    check(not Gimp.get_pdb().procedure_exists("plug-in-sd35-resident-txt2img"),
          "the resident procedures are gone")
    st, vals = txt2img(img, width=64, height=48)
    check(st == Gimp.PDBStatusType.SUCCESS and len(img.get_layers()) == n0 + 1,
          "the next call works, loading the model per call (%s)" % st)
    img.delete()


SECTIONS = [("registration", section_registration), ("i18n", section_i18n),
            ("errors", section_errors),
            ("txt2img", section_txt2img), ("batch", section_selection_and_batch),
            ("img2img", section_img2img), ("inpaint", section_inpaint),
            ("precision", section_precision),
            ("parasite", section_parasite), ("lora", section_lora),
            ("resident", section_resident),
            ("cancel", section_cancel), ("crash", section_crash)]

run_sections(SECTIONS, ONLY)

# Python-Fu: model loading per call vs. the resident engine, and its idle timeout.  Run by
# inside-chroot.sh twice: with SD35_NO_RESIDENT=1 (every call loads the model: the plug-in
# never hands the call to extension-sd35) and with SD35_IDLE_TIMEOUT=2 (the extension frees
# the model 2 s after a call, and loads it again on the next one).
import os, time

MODEL = os.environ["SD35_TEST_MODEL"]
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def call(name, img, **args):
    proc = Gimp.get_pdb().lookup_procedure(name)
    cfg = proc.create_config()
    if "run-mode" in [a.name for a in proc.get_arguments()]:
        cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if img is not None:
        cfg.set_property("image", img)
    for k, v in args.items():
        cfg.set_property(k, v)
    t0 = time.monotonic()
    res = proc.run(cfg)
    return res.index(0), [res.index(i) for i in range(1, res.length())], time.monotonic() - t0


def gen(img):
    return call("plug-in-sd35-txt2img", img, prompt="a red fox in the snow", seed=1234, steps=2,
                width=64, height=48, model=Gio.File.new_for_path(MODEL))


def status():
    st, vals, _ = call("plug-in-sd35-resident-status", None, unload=False)
    return dict(kv.split("=", 1) for kv in vals[0].split())


img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
if os.environ.get("SD35_NO_RESIDENT"):
    times = []
    for i in range(3):
        st, vals, dt = gen(img)
        check(st == Gimp.PDBStatusType.SUCCESS, "per-call loading: call %d succeeds" % (i + 1))
        times.append(dt)
    s = status()
    check(s.get("loads") == "0", "per-call loading: the resident engine was not used (loads=%s)" % s.get("loads"))
    print("info LATENCY per-call loading: first %.3f s, second %.3f s, third %.3f s" % tuple(times))
else:
    st, vals, t1 = gen(img)
    check(st == Gimp.PDBStatusType.SUCCESS and status().get("loaded") == "1", "resident: loaded after a call")
    time.sleep(3.5)
    s = status()
    check(s.get("loaded") == "0", "idle timeout 2 s: the model was freed (%s)" % s)
    st, vals, t2 = gen(img)
    s = status()
    check(st == Gimp.PDBStatusType.SUCCESS and s.get("loads") == "2",
          "after the timeout the next call loads it again (loads=%s)" % s.get("loads"))
    print("info LATENCY resident with reload after idle: %.3f s then %.3f s" % (t1, t2))
img.delete()
print("RESULT: %s" % ("FAIL" if failures else "PASS"))
if failures:
    raise AssertionError("%d checks failed" % len(failures))

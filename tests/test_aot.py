"""Kernels compiled ahead of time (oneinch._aot): the argument keys match numba's typeof, a
compiled variant serves exactly the calls it was built for and gives the JIT's results, and
a develop in a new process runs without ever starting numba's JIT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np
import pytest

from oneinch import _aot


def _values() -> list:
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    ro = a.copy()
    ro.setflags(write=False)
    return [
        a,
        a[:, ::2],  # 'A' layout
        np.asfortranarray(a),  # 'F'
        ro,
        np.zeros(5, np.uint16),
        np.zeros((2, 2, 3), np.uint8),
        np.zeros(3, np.bool_),
        np.zeros((0, 3), np.int64),
        np.zeros(4, np.float64)[None],  # (1, 4): both contiguous flags
        True,
        np.bool_(False),
        7,
        -(1 << 40),
        2.5,
        np.float32(1.5),
        np.int32(3),
        np.uint8(3),
        None,
        (a, np.float32(1)),
        (1, 2, 3),
    ]


@pytest.mark.parametrize("i", range(20))
def test_argument_key_is_numbas_type(i: int) -> None:
    """_key(value) (no numba) equals the key of numba.typeof(value) (what a signature holds)."""
    v = _values()[i]
    assert _aot._key(v) == _aot._type_key(numba.typeof(v))


def test_unknown_argument_types_match_nothing() -> None:
    assert _aot._key("text")[0] == "?"
    assert _aot._type_key(numba.typeof("text")) is None


# A kernel of the test's own, built into a module of its own (a few seconds).


@_aot.entry
@numba.njit(cache=False, nogil=True, fastmath=True)
def _kernel(x, out, gain):  # pragma: no cover - numba
    acc = 0.0
    for i in range(x.size):
        v = x.flat[i] * gain
        out.flat[i] = v
        acc += v
    return acc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("aot")
    x = np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64)
    _kernel(x, np.empty_like(x), np.float32(2))  # the JIT sees the signature to build
    old = os.environ.get("ONEINCH_AOT_DIR")
    os.environ["ONEINCH_AOT_DIR"] = str(d)
    _aot._state["table"] = None
    _aot.set_enabled(True)  # whatever ONEINCH_AOT says in this process
    try:
        path, n = _aot.build(names=[_kernel.name])
        yield d, path, n
    finally:
        _aot.set_enabled(None)
        if old is None:
            os.environ.pop("ONEINCH_AOT_DIR", None)
        else:
            os.environ["ONEINCH_AOT_DIR"] = old
        _aot._state["table"] = None


def test_compiled_variant_serves_its_signature_only(built) -> None:
    _d, path, n = built
    assert n == 1 and path.is_file()
    x = np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64)
    fn = _aot._compiled(_kernel, (x, np.empty_like(x), np.float32(2)))
    assert fn is not None
    out_a, out_j = np.empty_like(x), np.empty_like(x)
    acc_a = fn(x, out_a, np.float32(2))
    acc_j = _kernel.dispatcher(x, out_j, np.float32(2))
    np.testing.assert_array_equal(out_a, out_j)
    assert acc_a == pytest.approx(acc_j, rel=1e-9)
    # other types go to the JIT: float64 data, a non-contiguous view, a read-only output
    x64 = x.astype(np.float64)
    assert _aot._compiled(_kernel, (x64, np.empty_like(x64), np.float32(2))) is None
    assert _aot._compiled(_kernel, (x[:, ::2], np.empty((64, 32), np.float32), 2.0)) is None
    ro = np.empty_like(x)
    ro.setflags(write=False)
    assert _aot._compiled(_kernel, (x, ro, np.float32(2))) is None
    # ... and still give the right answer through the entry
    out = np.empty_like(x64)
    _kernel(x64, out, np.float32(2))
    np.testing.assert_allclose(out, x64 * 2)


def test_compiled_variant_releases_the_gil(built) -> None:
    """nogil=True holds for the compiled variant: another Python thread runs meanwhile."""
    x = np.ones((2048, 2048), np.float32)
    out = np.empty_like(x)
    fn = _aot._compiled(_kernel, (x, out, np.float32(2)))
    assert fn is not None
    count, stop = [0], [False]

    def spin() -> None:
        while not stop[0]:
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.02)
    c0 = count[0]
    for _ in range(5):
        fn(x, out, np.float32(2))
    c1 = count[0]
    stop[0] = True
    t.join()
    assert c1 - c0 > 1000


def test_stale_or_disabled_module_is_not_used(built) -> None:
    d, _path, _n = built
    x = np.zeros((4, 4), np.float32)
    args = (x, np.empty_like(x), np.float32(2))
    manifest = d / f"{_aot.MODULE}.json"
    text = manifest.read_text()
    try:
        m = json.loads(text)
        m["fingerprint"] = "0" * 32  # as after a source edit
        manifest.write_text(json.dumps(m))
        _aot._state["table"] = None
        assert _aot._compiled(_kernel, args) is None
    finally:
        manifest.write_text(text)
        _aot._state["table"] = None
    assert _aot._compiled(_kernel, args) is not None
    _aot.set_enabled(False)
    try:
        assert _aot._compiled(_kernel, args) is None
    finally:
        _aot.set_enabled(True)


DEVELOP_SCRIPT = r"""
import json, sys
import numpy as np
from oneinch import _aot
from oneinch.develop import develop
from oneinch.looks.looks import preset
from oneinch.recipe import Recipe
from oneinch.synthetic import demo_scene, unprocess
raw, _ = unprocess(demo_scene(256, 384) * 3.0, linear_input=True, iso=400, seed=5)
rcd = Recipe().with_(demosaic={"method": "rcd"})
cases = [("rcd", raw, rcd), ("ri", raw, Recipe().with_(demosaic={"method": "ri"})),
         ("preview", raw, Recipe().with_(output={"size": 128}))]
for width in (2048, 2000):  # streamed, the highlight field by block means / area tables
    wide, _ = unprocess(demo_scene(128, width) * 3.0, linear_input=True, iso=400, seed=5)
    cases.append((f"streamed{width}", wide, rcd))
wide, _ = unprocess(demo_scene(128, 2560) * 3.0, linear_input=True, iso=400, seed=5)
cases.append(("streamed-look", wide, preset("vibrant").with_(demosaic={"method": "rcd"},
                                                              exposure={"auto": True})))
from dataclasses import replace
cases.append(("no-noise-profile", replace(wide, noise_profile=None), rcd))  # estimated
out = {"available": _aot.available()}
res = {}
for name, img, r in cases:
    res[name] = develop(img, r, tiled=True, dtype=np.uint8).rgb
out["jit_started"] = _aot.jit_started()
out["numba_target_loaded"] = "numba.np.arraymath" in sys.modules
out["numba_imported"] = "numba" in sys.modules
from oneinch.isp import _domain  # compiled with noalias: in place must still be exact
y = (np.random.default_rng(3).random(200_003, dtype=np.float32) * 1.4 - 0.2).astype(np.float32)
a = y.copy()
out["decode_served"] = _aot._compiled(_domain._decode_flat, (a, a)) is not None
_domain._decode_flat(a, a)
_aot.set_enabled(False)
j = y.copy()
_domain._decode_flat(j, j)
out["decode_in_place_equal"] = bool(np.array_equal(a, j))
out["decode_error"] = float(np.max(np.abs(a - _domain.decode_exact(y)) /
                                   np.maximum(np.abs(_domain.decode_exact(y)), 1e-6)))
diff = 0
for name, img, r in cases:
    j = develop(img, r, tiled=True, dtype=np.uint8).rgb
    diff = max(diff, int(np.abs(j.astype(int) - res[name].astype(int)).max()))
out["max_code_diff"] = diff
print(json.dumps(out))
"""


def test_develop_in_a_new_process_never_starts_the_jit() -> None:
    """The strip paths (rcd, ri, a binned preview, streamed; clipped highlights; the noise
    estimated for a raw without a profile) run on the compiled module alone, and agree with
    the JIT to within one code of 8 bits (fastmath rounding)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEINCH_AOT")}
    p = subprocess.run([sys.executable, "-c", DEVELOP_SCRIPT], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["available"], "no ahead-of-time module for these sources: python -m oneinch.warm"
    assert not out["jit_started"]
    assert not out["numba_target_loaded"]
    assert not out["numba_imported"]  # (oneinch._jit: numba is imported when first needed)
    assert out["max_code_diff"] <= 1
    assert out["decode_served"] and out["decode_in_place_equal"]
    assert out["decode_error"] < 2e-6


LAZY_SCRIPT = r"""
import sys
import numpy as np
from oneinch._jit import njit, numba, prange, intrinsic, types, ir, loaded

@intrinsic
def _bits(typingctx, x):
    if not (isinstance(x, types.Float) and x.bitwidth == 32):
        return None
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen

@njit(inline="always")
def _half(v):
    return v * np.float32(0.5)

@njit(parallel=True)
def kernel(x, out):
    for i in numba.prange(x.size):
        out[i] = _half(x[i]) + np.float32(_bits(x[i]) & 1)
    s = 0.0
    for i in prange(x.size):
        s += out[i]
    return s

before = ("numba" in sys.modules, loaded(), type(kernel).__name__)
x = np.arange(1000, dtype=np.float32)
out = np.empty_like(x)
s = kernel(x, out)
ref = x * 0.5 + (x.view(np.int32) & 1)
print(before, loaded(), type(globals()["kernel"]).__name__, type(globals()["prange"]).__name__,
      bool(np.array_equal(out, ref)), abs(s - float(ref.sum())) < 1e-3)
"""


def test_lazy_numba_loads_and_rebinds_on_first_use() -> None:
    """Kernels written against oneinch._jit (njit, numba.prange, prange, intrinsic, types,
    ir; one calling another) do not import numba until called; then numba is loaded, every
    stand-in global becomes the real object, and the kernel compiles and computes as with
    plain numba."""
    p = subprocess.run([sys.executable, "-c", LAZY_SCRIPT], capture_output=True, text=True,
                       timeout=300, cwd=os.path.dirname(__file__))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["(False,", "False,", "'LazyDispatcher')", "True", "CPUDispatcher",
                                "type", "True", "True"], p.stdout



def test_bytecode_is_written_even_when_python_may_not(tmp_path: Path) -> None:
    """warm.bytecode writes the __pycache__ of the package's modules (an editable install is
    never byte-compiled, and PYTHONDONTWRITEBYTECODE stops Python writing any): a fresh file
    is compiled, a second call compiles nothing, an edited source is compiled again, and the
    new process that imports it reads the bytecode (no compile from source)."""
    import importlib.util
    import os

    from oneinch.warm import bytecode

    pkg = tmp_path / "pkg_bc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    mod = pkg / "m.py"
    mod.write_text("X = 1\n")
    assert bytecode(pkg) == 2
    cached = Path(importlib.util.cache_from_source(str(mod)))
    assert cached.exists()
    assert bytecode(pkg) == 0
    mod.write_text("X = 22\n")  # a different size, so stale even within one mtime second
    assert bytecode(pkg) == 1
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-v", "-c", "import pkg_bc.m as m; print(m.X)"],
        capture_output=True, text=True, env=env, check=True,
    )
    assert out.stdout.strip() == "22"
    assert f"code object from '{cached}'" in out.stderr
    assert f"code object from {mod}\n" not in out.stderr

"""Importing kalcoint and starting the CLI load nothing heavy and change no global state.

Each check runs in a fresh interpreter and inspects ``sys.modules`` (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "numba", "scipy", "scipy.stats", "statsmodels", "matplotlib", "dask", "distributed")


def fresh(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a new interpreter; it must print one JSON line."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def loaded(names: tuple[str, ...] = HEAVY) -> str:
    return f"[m for m in {list(names)!r} if m in sys.modules]"


def test_import_kalcoint_loads_no_heavy_module_and_sets_nothing() -> None:
    code = (
        "import os, sys, json\n"
        "before = dict(os.environ)\n"
        "import kalcoint\n"
        f"print(json.dumps({{'loaded': {loaded()}, 'env': sorted(set(os.environ.items()) ^ set(before.items()))}}))\n"
    )
    result = fresh(code)
    assert result == {"loaded": [], "env": []}


def test_public_names_import_on_first_use_without_statsmodels_or_matplotlib() -> None:
    code = (
        "import sys, json\n"
        "import kalcoint as kc\n"
        "names = [kc.tune, kc.johansen, kc.adf, kc.kalman_filter, kc.load_model, kc.simulate, kc.KalcointError]\n"
        "from kalcoint.backtest import BacktestResult\n"
        "from kalcoint import compare_backtests, TunedModel, JohansenResult\n"
        "import numba\n"
        f"print(json.dumps({{'loaded': {loaded(('scipy.stats', 'statsmodels', 'matplotlib', 'dask'))}, "
        "'all': sorted(kc.__all__) == sorted(n for n in kc.__all__ if getattr(kc, n) is not None), "
        "'numba_cache_dir': numba.config.CACHE_DIR}))\n"
    )
    result = fresh(code, env={"NUMBA_CACHE_DIR": ""})
    assert result["loaded"] == []
    assert result["all"] is True
    assert result["numba_cache_dir"] == ""  # kalcoint's kernels use their own locator, not numba's setting


def test_johansen_and_adf_run_without_statsmodels_or_scipy_stats() -> None:
    code = (
        "import sys, json\n"
        "import numpy as np\n"
        "from kalcoint import johansen, adf\n"
        "rng = np.random.default_rng(0)\n"
        "x = np.cumsum(rng.standard_normal((400, 3)), axis=0) + 50\n"
        "res = johansen(x)\n"
        "p = adf(res.portfolio(x)).pvalue\n"
        f"print(json.dumps({{'loaded': {loaded(('scipy.stats', 'statsmodels'))}, 'p': p}}))\n"
    )
    result = fresh(code)
    assert result["loaded"] == []
    assert 0.0 <= result["p"] <= 1.0


def test_cli_help_imports_no_command_module_and_lists_every_command() -> None:
    code = (
        "import sys, json, io, contextlib\n"
        "sys.argv = ['kalcoint', '--help']\n"
        "from kalcoint.cli import main\n"
        "buf = io.StringIO()\n"
        "try:\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "mods = sorted(m for m in sys.modules if m.startswith('kalcoint.cli.') and not m.split('.')[-1].startswith('_'))\n"
        f"print(json.dumps({{'loaded': {loaded()}, 'modules': mods, 'help': buf.getvalue()}}))\n"
    )
    result = fresh(code, env={"COLUMNS": "200"})
    assert result["loaded"] == [] and result["modules"] == []
    for command in (
        "johansen",
        "tune",
        "filter",
        "compare",
        "demo",
        "backtest",
        "update",
        "status",
        "history",
        "screen",
    ):
        assert f" {command} " in result["help"]


@pytest.mark.parametrize("command", ["status", "screen"])
def test_cli_command_imports_only_its_module(command: str) -> None:
    code = (
        "import sys, json\n"
        f"sys.argv = ['kalcoint', '{command}', '--help']\n"
        "from kalcoint.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "mods = sorted(m for m in sys.modules if m.startswith('kalcoint.cli.') and not m.split('.')[-1].startswith('_'))\n"
        f"print(json.dumps({{'modules': mods, 'loaded': {loaded(('statsmodels', 'scipy.stats', 'matplotlib', 'dask'))}}}))\n"
    )
    result = fresh(code)
    assert result["loaded"] == []
    assert result["modules"] == [f"kalcoint.cli.{'live' if command == 'status' else command}"]


@pytest.mark.slow
def test_thread_pools_limited_around_tune_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import json, numpy as np\n"
        "from threadpoolctl import threadpool_info\n"
        "import kalcoint.tuning as tuning\n"
        "import kalcoint.tuning.seed as seed\n"
        "from kalcoint.synthetic import simulate\n"
        "seen = []\n"
        "real = seed.first_pass_model\n"
        "def spy(*a, **k):\n"
        "    seen.append(max(p['num_threads'] for p in threadpool_info()))\n"
        "    return real(*a, **k)\n"
        "seed.first_pass_model = spy\n"
        "prices, _ = simulate(n=300)\n"
        "tuning.tune(prices, iterations=3, diagnose=False)\n"
        "print(json.dumps({'inside': seen, 'after': max(p['num_threads'] for p in threadpool_info())}))\n"
    )
    result = fresh(code, env={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    assert result == {"inside": [1], "after": 2}

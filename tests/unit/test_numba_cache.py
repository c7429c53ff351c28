"""Each process that may compile librosa's numba kernels fills a numba cache of its own (issue #41 item 8;
numba/numba#10128: two processes filling one cache crashed a CI run)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from genre_style import numba_cache
from tests.conftest import REPO

SHOW = "import os, sys, time, genre_style; print(os.environ['NUMBA_CACHE_DIR'], flush=True); time.sleep(float(sys.argv[1]))"


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in (numba_cache.VARIABLE, numba_cache.OWNER)}
    return {**env, "GENRE_STYLE_OUTPUTS": str(tmp_path), **extra}


def _python(code, env, *args):
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_concurrent_processes_get_their_own_cache_and_a_later_one_reuses_a_free_one(tmp_path):
    env = _env(tmp_path)
    running = [_python(SHOW, env, "3") for _ in range(3)]  # alive together
    folders = [p.communicate(timeout=120)[0].strip() for p in running]
    assert len(set(folders)) == 3 and all(f.startswith(str(tmp_path / "cache" / "numba" / "slot-")) for f in folders)
    later = _python(SHOW, env, "0").communicate(timeout=120)[0].strip()
    assert later in folders  # the slots were freed when their processes ended: compiled kernels are reused


@pytest.mark.slow
def test_forked_and_spawned_workers_claim_their_own_cache(tmp_path):
    script = tmp_path / "workers.py"
    script.write_text(
        textwrap.dedent(
            """
            import multiprocessing as mp, os, time
            import genre_style

            def where(_):
                time.sleep(0.3)
                return os.getpid(), os.environ["NUMBA_CACHE_DIR"]

            if __name__ == "__main__":
                mine = os.environ["NUMBA_CACHE_DIR"]
                for method in ("fork", "spawn"):
                    with mp.get_context(method).Pool(2) as pool:
                        seen = dict(pool.map(where, range(6)))
                    assert mine not in seen.values() and len(set(seen.values())) == len(seen), (method, mine, seen)
                print("ok")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.slow
def test_a_numba_cache_dir_you_set_is_left_alone(tmp_path):
    env = _env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert _python(SHOW, env, "0").communicate(timeout=120)[0].strip() == str(tmp_path / "mine")


def test_a_process_holds_its_slot_until_it_ends(tmp_path, monkeypatch):
    """In-process: the slot's lock is held, so another claimant (a second lock on the same file) moves on."""
    from filelock import FileLock, Timeout

    monkeypatch.delenv(numba_cache.VARIABLE, raising=False)
    monkeypatch.delenv(numba_cache.OWNER, raising=False)
    monkeypatch.setattr(numba_cache, "_held", None)
    folder = numba_cache.claim(tmp_path)
    assert folder == str(tmp_path / "slot-0") and os.environ[numba_cache.VARIABLE] == folder
    assert numba_cache.claim(tmp_path) == folder  # claiming again in the same process keeps the slot
    with pytest.raises(Timeout):
        FileLock(str(tmp_path / "slot-0.lock")).acquire(timeout=0)
    numba_cache._held.release()


@pytest.mark.slow
def test_a_private_cache_made_when_no_slot_can_be_had_is_removed_at_exit(tmp_path):
    (tmp_path / "cache").write_text("a file where the cache folder should be")  # no slot can be made under it
    env = _env(tmp_path, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = _python(SHOW, env, "0").communicate(timeout=120)[0].strip()
    assert folder.startswith(str(tmp_path / "tmp" / "genre-style-numba-"))  # the private fallback was used ...
    assert not os.path.exists(folder)  # ... and removed when the process ended

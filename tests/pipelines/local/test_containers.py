"""How task containers' logs reach the run log."""

from kubecycle.pipelines.local.containers import whole_lines


def test_a_log_written_in_pieces_comes_out_in_whole_lines():
    # a traceback's last line is written as module, dot and class name, then the message;
    # 'é' arrives split over two chunks
    chunks = [b"Traceback (most recent call last):\n  File", b" \"x.py\"\n",
              b"kubecycle.errors", b".", b"DataValidationError", b": caf\xc3", b"\xa9 missing\n",
              b"no newline at the end"]
    assert list(whole_lines(chunks)) == [
        "Traceback (most recent call last):\n", '  File "x.py"\n',
        "kubecycle.errors.DataValidationError: café missing\n", "no newline at the end"]


def test_an_empty_log_has_no_lines():
    assert list(whole_lines([])) == []
    assert list(whole_lines([b"", b"one\n"])) == ["one\n"]


def test_task_containers_see_the_data_and_the_pretrained_model_read_only(tmp_path):
    from kubecycle.config import parse_config
    from kubecycle.pipelines.local.containers import host_mounts

    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    cfg = parse_config({"data": {"source": "data/x.csv", "target": "y"},
                        "models": {"pretrained": "models/m.skops"},
                        "deploy": {"bento_store": str(tmp_path / "bentos")}}, base_dir=tmp_path)
    mounts = {m["Target"]: m for m in host_mounts(cfg)}
    assert set(mounts) == {str(tmp_path / f) for f in ("data", "models", "bentos")}
    assert mounts[str(tmp_path / "models")]["ReadOnly"] and mounts[str(tmp_path / "data")]["ReadOnly"]
    assert not mounts[str(tmp_path / "bentos")]["ReadOnly"]
    uri = cfg.model_copy(update={"models": cfg.models.model_copy(update={"pretrained": "runs:/r/m"})})
    assert str(tmp_path / "models") not in {m["Target"] for m in host_mounts(uri)}
    (tmp_path / "data").rmdir()  # missing: the ingest task says so, not the container start
    assert str(tmp_path / "data") not in {m["Target"] for m in host_mounts(cfg)}

import pandas as pd
import pytest

from kubecycle.errors import DataSourceError
from kubecycle.tables import parquet_rows, table_chunks, table_files


def test_a_folder_gives_its_tables_in_order_and_skips_markers(tmp_path):
    (tmp_path / "b").mkdir()
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"x": [4]}).to_csv(tmp_path / "b" / "c.csv", index=False)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "_labels").mkdir()  # the label store inside an inference log
    pd.DataFrame({"label": ["1"]}).to_parquet(tmp_path / "_labels" / "part.parquet")
    (tmp_path / ".d.parquet.tmp").write_text("")
    (tmp_path / "notes.txt").write_text("")
    files = table_files(tmp_path, "--input")
    assert [f.path for f in files] == [str(tmp_path / "a.parquet"), str(tmp_path / "b" / "c.csv")]
    assert parquet_rows(files) is None and parquet_rows(files[:1]) == 3
    chunks = [c for f in files for c in table_chunks(f, 2, "--input")]
    assert [len(c) for c in chunks] == [2, 1, 1]


def test_csv_as_text_keeps_every_cell_as_written(tmp_path):
    (tmp_path / "in.csv").write_text("code,amount\n007,1.50\n,x\n")
    [file] = table_files(tmp_path / "in.csv", "--input")
    [chunk] = table_chunks(file, 10, "--input", csv_as_text=True)
    assert chunk["code"].tolist()[0] == "007" and chunk["amount"].tolist() == ["1.50", "x"]
    assert chunk["code"].isna().tolist() == [False, True]


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_only_the_asked_columns_the_file_has_are_read(tmp_path, suffix):
    frame = pd.DataFrame({"request_id": ["a", "b"], "x": [1.0, 2.0], "y": ["u", "v"]})
    path = tmp_path / f"t.{suffix}"
    frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)
    [file] = table_files(path, "--input")
    [chunk] = table_chunks(file, 10, "--input", columns=["request_id", "absent"])
    assert list(chunk.columns) == ["request_id"] and chunk["request_id"].tolist() == ["a", "b"]


def test_missing_sources_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(DataSourceError, match=r"--input .*nowhere.csv not found"):
        table_files(tmp_path / "nowhere.csv", "--input")
    with pytest.raises(DataSourceError, match=r"--input .* holds no .parquet/.pq/.csv/.csv.gz files"):
        table_files(tmp_path, "--input")
    (tmp_path / "bad.parquet").write_text("not parquet")
    [file] = table_files(tmp_path / "bad.parquet", "--input")
    with pytest.raises(DataSourceError, match=r"--input .*bad.parquet could not be read"):
        list(table_chunks(file, 10, "--input"))


def test_an_object_store_prefix_is_listed_and_read(s3_bucket):
    import pyarrow.fs as fs

    filesystem, base = fs.FileSystem.from_uri(f"{s3_bucket}/in")
    with filesystem.open_output_stream(f"{base}/part-0.parquet") as handle:
        pd.DataFrame({"x": [1, 2]}).to_parquet(handle)
    with filesystem.open_output_stream(f"{base}/_labels/part-0.parquet") as handle:
        pd.DataFrame({"label": ["1"]}).to_parquet(handle)
    files = table_files(f"{s3_bucket}/in", "--input")
    assert [f.name for f in files] == ["s3://kubecycle-test/in/part-0.parquet"]
    assert parquet_rows(files) == 2
    assert pd.concat(table_chunks(files[0], 10, "--input"))["x"].tolist() == [1, 2]

import pandas as pd
import pytest

from kubecycle.errors import DataSourceError
from kubecycle.scoring.output import AtomicTable, beside


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_appear_only_on_commit(tmp_path, suffix):
    destination = tmp_path / "out" / f"scores{suffix}"
    table = AtomicTable(str(destination), "--output")
    table.write(pd.DataFrame({"id": ["a", "b"], "prediction": [1.0, 2.0]}))
    table.write(pd.DataFrame({"id": ["c"], "prediction": [3.0]}))
    assert not destination.exists()
    assert table.commit() == str(destination)
    read = pd.read_csv(destination) if suffix == ".csv" else pd.read_parquet(destination)
    assert read.to_dict("list") == {"id": ["a", "b", "c"], "prediction": [1.0, 2.0, 3.0]}
    assert [p.name for p in destination.parent.iterdir()] == [destination.name]


def test_abort_leaves_the_destination_as_it_was(tmp_path):
    destination = tmp_path / "scores.parquet"
    pd.DataFrame({"old": [1]}).to_parquet(destination)
    table = AtomicTable(str(destination), "--output")
    table.write(pd.DataFrame({"new": [2]}))
    table.abort()
    assert pd.read_parquet(destination).columns.tolist() == ["old"]
    assert list(tmp_path.iterdir()) == [destination]


def test_no_rows_still_give_a_table_with_the_columns(tmp_path):
    table = AtomicTable(str(tmp_path / "rejects.csv"), "--output")
    table.write(pd.DataFrame({"a": [], "reject_reason": []}))
    assert pd.read_csv(table.commit()).columns.tolist() == ["a", "reject_reason"]


def test_a_column_missing_in_the_first_chunk_takes_text_later(tmp_path):
    table = AtomicTable(str(tmp_path / "s.parquet"), "--output")
    table.write(pd.DataFrame({"note": [None]}))
    table.write(pd.DataFrame({"note": ["x"]}))
    assert pd.read_parquet(table.commit())["note"].tolist() == [None, "x"]


def test_unknown_suffix_is_refused_with_the_option():
    with pytest.raises(DataSourceError, match=r"--output out.txt: name a .csv or .parquet file"):
        AtomicTable("out.txt", "--output")


def test_beside_puts_the_label_before_the_suffix():
    assert beside("s3://b/p/out.parquet", "rejects") == "s3://b/p/out.rejects.parquet"


def test_an_object_store_gets_the_whole_table_in_one_upload(s3_bucket):
    import pyarrow.fs as fs

    uri = f"{s3_bucket}/scores/out.parquet"
    table = AtomicTable(uri, "--output")
    table.write(pd.DataFrame({"prediction": [1, 2]}))
    filesystem, path = fs.FileSystem.from_uri(uri)
    assert filesystem.get_file_info(path).type == fs.FileType.NotFound
    table.commit()
    with filesystem.open_input_file(path) as handle:
        assert pd.read_parquet(handle)["prediction"].tolist() == [1, 2]

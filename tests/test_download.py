"""train_CNN.py --download-dataset, fed a small zip in the layout of Microsoft's archive via a file:// URL."""
import zipfile
from pathlib import Path

import pytest

from conftest import COLOURS, make_photo

from classifier import download
from classifier.config import UsageError
from classifier.download import download_dataset

PER_CLASS = 10


def make_archive(root, per_class=PER_CLASS, top="PetImages"):
    """PetImages/Cat/0.jpg ... and PetImages/Dog/0.jpg ..., one Dog photo empty (as 11702.jpg is in the real one)."""
    source = Path(root, "source")
    for folder, colour in (("Cat", COLOURS["Cats"]), ("Dog", COLOURS["Dogs"])):
        for index in range(per_class):
            make_photo(source / top / folder / f"{index}.jpg", colour, seed=index)
    (source / top / "Dog" / "666.jpg").write_bytes(b"")
    (source / top / "Cat" / "Thumbs.db").write_bytes(b"\0" * 16)  # not an image name: ignored
    archive = Path(root, "kagglecatsanddogs_test.zip")
    with zipfile.ZipFile(archive, "w") as file:
        for path in sorted(source.rglob("*")):
            file.write(path, path.relative_to(source))
    return archive


def layout(data):
    return {(split, name): sorted(path.name for path in (data / split / name).iterdir())
            for split in ("Training_Set", "Test_Set") for name in ("Cats", "Dogs")}


def test_lays_out_good_photos_at_80_20(tmp_path, capsys):
    archive = make_archive(tmp_path)
    download_dataset(tmp_path / "data", archive.as_uri(), seed=1, cache_dir=tmp_path / "cache")
    files = layout(tmp_path / "data")
    for name, prefix, good in (("Cats", "cat", PER_CLASS), ("Dogs", "dog", PER_CLASS)):
        train, test = files["Training_Set", name], files["Test_Set", name]
        assert (len(train), len(test)) == (good - round(good * 0.2), round(good * 0.2))
        assert sorted(train + test) == sorted(f"{prefix}.{index}.jpg" for index in range(good))  # each once, none lost
    assert "666" not in str(files)
    captured = capsys.readouterr()
    assert "warning: leaving out PetImages/Dog/666.jpg: empty file" in captured.err
    assert "Thumbs.db" not in captured.err + captured.out
    assert (tmp_path / "cache" / "datasets" / archive.name).is_file()  # kept for the next run


def test_split_is_seeded_and_files_already_there_are_kept(tmp_path):
    archive = make_archive(tmp_path)
    cache = tmp_path / "cache"
    download_dataset(tmp_path / "first", archive.as_uri(), seed=1, cache_dir=cache)
    archive.unlink()  # from now on only the cached copy can be used
    download_dataset(tmp_path / "again", archive.as_uri(), seed=1, cache_dir=cache)
    assert layout(tmp_path / "first") == layout(tmp_path / "again")
    download_dataset(tmp_path / "other", archive.as_uri(), seed=2, cache_dir=cache)
    assert layout(tmp_path / "first") != layout(tmp_path / "other")

    data = tmp_path / "first"
    mine = make_photo(data / "Training_Set" / "Cats" / "my own cat.jpg", (10, 20, 30))
    test_cat = sorted((data / "Test_Set" / "Cats").iterdir())[0]
    test_cat.write_bytes(b"edited by the user")
    before = layout(data)
    download_dataset(data, archive.as_uri(), seed=3, cache_dir=cache)  # another seed would put files elsewhere
    assert layout(data) == before  # nothing added twice, nothing moved
    assert test_cat.read_bytes() == b"edited by the user" and mine.is_file()


def test_archive_without_pet_images_is_one_clear_error(tmp_path):
    archive = make_archive(tmp_path, per_class=1, top="Pictures")
    with pytest.raises(UsageError, match="does not hold PetImages/Cat and PetImages/Dog"):
        download_dataset(tmp_path / "data", archive.as_uri(), cache_dir=tmp_path / "cache")


def test_command_line(tmp_path, run, monkeypatch):
    """train_CNN.py --download-dataset through main(argv); the README's quick start runs it in a fresh Python."""
    fetch = download.fetch  # keras.utils.get_file's cache in tmp_path, not ~/.keras
    monkeypatch.setattr(download, "fetch", lambda url, cache_dir=None: fetch(url, tmp_path / "keras"))
    archive = make_archive(tmp_path)
    result = run("train_CNN.py", "--download-dataset", "--data", tmp_path / "data", "--dataset-url", archive.as_uri())
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'data' / 'Training_Set'}: added 8 Cats, 8 Dogs" in result.stdout
    assert f"{tmp_path / 'data' / 'Test_Set'}: added 2 Cats, 2 Dogs" in result.stdout
    assert not (tmp_path / "model.h5").exists()  # it downloads, then stops: no training
    assert list((tmp_path / "keras").rglob("*.zip"))

    result = run("train_CNN.py", "--download-dataset", "--data", tmp_path / "data", "--dataset-url", (tmp_path / "missing.zip").as_uri())
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "could not download" in errors[0] and "missing.zip" in errors[0]

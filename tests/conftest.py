import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def media_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("STREAMQC_MEDIA", REPO.parent / "shared" / "media"))


@pytest.fixture(scope="session")
def shared_media() -> pathlib.Path:
    path = media_dir()
    if not path.is_dir():
        pytest.skip(f"real clips not found at {path} (set STREAMQC_MEDIA to the shared media folder)")
    return path

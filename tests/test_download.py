"""benchmark/download.py against a local HTTP server on 127.0.0.1 that honours Range (or, on request, ignores it)."""

import hashlib
import io
import json
import os
import re
import stat
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmark import download
from benchmark.cli import main
from benchmark.download import DownloadError, RemoteFile, Source, download_all, fetch


class Files(BaseHTTPRequestHandler):
    content: dict[str, bytes] = {}
    requests: list[tuple[str, str | None]] = []
    honour_range = True

    def do_GET(self):  # noqa: N802
        Files.requests.append((self.path, self.headers.get("Range")))
        data = Files.content.get(self.path)
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and Files.honour_range:
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Files.content, Files.requests, Files.honour_range = {}, [], True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_gz(files: dict[str, bytes], top: str = "repo-abc123") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


PAYLOAD = bytes(range(256)) * 400  # 100 KiB


def test_download_verifies_a_pinned_checksum(server, tmp_path):
    Files.content["/labels/test.txt"] = PAYLOAD
    source = Source("labels", "split files", "COVID-Net", (RemoteFile(f"{server}/labels/test.txt", "COVID-Net/labels/test.txt", _sha(PAYLOAD)),))
    assert download_all(tmp_path, sources=(source,), quiet=True) == 0
    assert (tmp_path / "COVID-Net/labels/test.txt").read_bytes() == PAYLOAD
    download_all(tmp_path, sources=(source,), quiet=True)  # present and verified: not fetched again
    assert len(Files.requests) == 1


def test_a_wrong_pinned_checksum_is_an_error_naming_the_file(server, tmp_path):
    Files.content["/labels/test.txt"] = PAYLOAD
    source = Source("labels", "split files", "COVID-Net", (RemoteFile(f"{server}/labels/test.txt", "COVID-Net/labels/test.txt", "0" * 64),))
    with pytest.raises(DownloadError, match=r"test\.txt: sha256 [0-9a-f]{64} does not match the pinned checksum 0{64}"):
        download_all(tmp_path, sources=(source,), quiet=True)
    assert not (tmp_path / "COVID-Net/labels/test.txt").exists()  # never used ...
    assert (tmp_path / "COVID-Net/labels/test.txt.sha256-mismatch").read_bytes() == PAYLOAD  # ... but kept for inspection


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    Files.content["/big.bin"] = PAYLOAD
    target = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:30000])  # what an interrupted run leaves
    fetch(f"{server}/big.bin", target, quiet=True)
    assert target.read_bytes() == PAYLOAD and not (tmp_path / "big.bin.part").exists()
    assert Files.requests == [("/big.bin", "bytes=30000-")]


def test_a_server_ignoring_range_is_read_from_the_start(server, tmp_path):
    Files.content["/big.bin"] = PAYLOAD
    Files.honour_range = False
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:30000])
    fetch(f"{server}/big.bin", tmp_path / "big.bin", quiet=True)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_a_complete_part_file_is_accepted_on_416(server, tmp_path):
    Files.content["/big.bin"] = PAYLOAD
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD)
    fetch(f"{server}/big.bin", tmp_path / "big.bin", quiet=True)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_http_errors_name_the_file(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        fetch(f"{server}/missing.bin", tmp_path / "missing.bin", quiet=True)


def test_an_archive_is_trusted_on_first_use_extracted_and_checked(server, tmp_path):
    metadata = b"patientid,finding\n1,COVID-19\n"
    archive = _tar_gz({"metadata.csv": metadata, "images/a.png": b"png"})
    Files.content["/repo/archive/abc123.tar.gz"] = archive
    remote = RemoteFile(f"{server}/repo/archive/abc123.tar.gz", ".downloads/repo-abc123.tar.gz", extract_to="covid-chestxray-dataset",
                        check=(("metadata.csv", _sha(metadata)),))
    source = Source("cohen", "test collection", "covid-chestxray-dataset", (remote,))
    download_all(tmp_path, sources=(source,), quiet=True)
    assert (tmp_path / "covid-chestxray-dataset/metadata.csv").read_bytes() == metadata  # top folder stripped
    assert (tmp_path / "covid-chestxray-dataset/images/a.png").is_file()
    lock = json.loads((tmp_path / download.LOCK_FILE).read_text())
    assert lock[remote.url]["sha256"] == _sha(archive) and lock[remote.url]["file"] == remote.target

    # later runs: extracted from the trusted archive, nothing fetched even when the archive was deleted
    (tmp_path / remote.target).unlink()
    download_all(tmp_path, sources=(source,), quiet=True)
    assert len(Files.requests) == 1

    # the server now sends other bytes: the recorded checksum rejects them
    Files.content["/repo/archive/abc123.tar.gz"] = _tar_gz({"metadata.csv": b"tampered"})
    (tmp_path / "covid-chestxray-dataset" / download.MARKER).unlink()
    with pytest.raises(DownloadError, match=r"repo-abc123\.tar\.gz: sha256 .* does not match the checksum recorded at the first download"):
        download_all(tmp_path, sources=(source,), quiet=True)


def test_a_pinned_file_inside_an_archive_is_checked(server, tmp_path):
    Files.content["/a.tar.gz"] = _tar_gz({"metadata.csv": b"other commit"})
    remote = RemoteFile(f"{server}/a.tar.gz", ".downloads/a.tar.gz", extract_to="cohen", check=(("metadata.csv", "f" * 64),))
    with pytest.raises(DownloadError, match=r"metadata\.csv: sha256 .* does not match the pinned f{64} \(wrong commit\?\)"):
        download_all(tmp_path, sources=(Source("cohen", "x", "cohen", (remote,)),), quiet=True)


def test_credentialed_sets_print_what_to_download_and_where(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(download, "kaggle_configured", lambda: False)
    assert download_all(tmp_path, only=["covid19_radiography", "kermany_pneumonia", "chestxray14", "chexpert", "covidx_images"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}/COVID-19_Radiography_Dataset/{{COVID,Normal,Viral Pneumonia,Lung_Opacity}}/" in out
    assert f"{tmp_path}/chest_xray/{{train,val,test}}/{{NORMAL,PNEUMONIA}}/" in out
    assert "https://nihcc.app.box.com/v/ChestXray-NIHCC" in out and f"{tmp_path}/ChestX-ray14/" in out
    assert f"{tmp_path}/CheXpert-v1.0-small/" in out and "kaggle datasets download -d tawsifurrahman/covid19-radiography-database" in out
    assert "not downloadable without an account" in out


def test_the_kaggle_cli_is_used_when_configured(tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kaggle = bin_dir / "kaggle"
    kaggle.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/kaggle-args\n")
    kaggle.chmod(kaggle.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    assert download.kaggle_configured()
    download_all(tmp_path / "data", only=["kermany_pneumonia"])
    assert (tmp_path / "kaggle-args").read_text().split() == ["datasets", "download", "-d", "paultimothymooney/chest-xray-pneumonia",
                                                              "-p", str(tmp_path / "data"), "--unzip"]


def test_the_default_sources_pin_the_shared_copies():
    """The pinned checksums are those of the byte-for-byte copies in shared/data (when it is there)."""
    sources = {s.name: s for s in download.SOURCES}
    assert "584034a" in sources["cohen"].files[0].url and all("6599980" in f.url for f in sources["covidx_labels"].files)
    assert sum(f.sha256 is not None for f in sources["covidx_labels"].files) == 3
    assert sources["cohen"].files[0].check == (("metadata.csv", download.COHEN_METADATA_SHA256),)


@pytest.mark.integration
def test_pinned_checksums_match_the_shared_copies(shared_data):
    assert _sha((shared_data / "cohen-covid-chestxray" / "metadata.csv").read_bytes()) == download.COHEN_METADATA_SHA256
    for name, sha in download.COVIDNET_LABELS.items():
        copy = shared_data / "covidx-splits" / "labels" / name
        if sha is not None:
            assert _sha(copy.read_bytes()) == sha


def test_cli_reports_unknown_sources(tmp_path, capsys):
    assert main(["download", "--data-root", str(tmp_path), "--only", "nope"]) == 2
    assert "unknown source(s) nope" in capsys.readouterr().err


def _hostile_tar(member: tarfile.TarInfo) -> bytes:
    """A good file, then ``member``: what a tampered or careless archive could hold."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        good = tarfile.TarInfo("repo-abc123/metadata.csv")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"a,b"))
        tar.addfile(member, io.BytesIO(b"evil") if member.isfile() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("member, reason", [
    (_member("repo-abc123/../../escape.txt"), "its path leads out of the archive's folder"),
    (_member("repo-abc123/passwd", tarfile.SYMTYPE, "/etc/passwd"), "a link to an absolute path"),
    (_member("repo-abc123/up", tarfile.SYMTYPE, "../../.."), "a link that points out of the archive's folder"),
    (_member("repo-abc123/hard", tarfile.LNKTYPE, "../../escape.txt"), "a link that points out of the archive's folder"),
    (_member("repo-abc123/null", tarfile.CHRTYPE), "a device or other special file"),
])
def test_a_refused_tar_member_is_an_error_naming_it_and_nothing_is_left(server, tmp_path, member, reason):
    Files.content["/a.tar.gz"] = _hostile_tar(member)
    root = tmp_path / "data"
    remote = RemoteFile(f"{server}/a.tar.gz", ".downloads/a.tar.gz", extract_to="cohen")
    with pytest.raises(DownloadError) as error:
        download_all(root, sources=(Source("cohen", "x", "cohen", (remote,)),), quiet=True)
    assert str(error.value) == f"a.tar.gz: member {member.name!r} refused ({reason}); nothing was extracted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written outside the data root ...
    assert sorted(p.name for p in root.iterdir()) == [".downloads", download.LOCK_FILE]  # ... nor a partial folder in it


def test_a_truncated_or_foreign_tar_is_an_error_naming_it(server, tmp_path):
    Files.content["/a.tar.gz"] = _tar_gz({"metadata.csv": b"a,b", "images/a.png": os.urandom(20000)})[:-5000]
    root = tmp_path / "data"
    remote = RemoteFile(f"{server}/a.tar.gz", ".downloads/a.tar.gz", extract_to="cohen")
    with pytest.raises(DownloadError, match=r"a\.tar\.gz: not a readable tar archive after member 'repo-abc123/images/a\.png' .*nothing was extracted"):
        download_all(root, sources=(Source("cohen", "x", "cohen", (remote,)),), quiet=True)
    assert sorted(p.name for p in root.iterdir()) == [".downloads", download.LOCK_FILE]
    Files.content["/b.tar.gz"] = b"<html>rate limited</html>"
    remote = RemoteFile(f"{server}/b.tar.gz", ".downloads/b.tar.gz", extract_to="other")
    with pytest.raises(DownloadError, match=r"b\.tar\.gz: not a readable tar archive \(file could not be opened successfully\); nothing"):
        download_all(root, sources=(Source("other", "x", "other", (remote,)),), quiet=True)

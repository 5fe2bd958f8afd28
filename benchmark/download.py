"""``make data`` / ``python -m benchmark download``: fetch the datasets that are public without credentials into a
data root, verified and resumable; print exactly how to get the others.

Downloaded (``SOURCES`` with files), each into the folder its DataModule looks for under the data root:

- ``cohen``: ieee8023/covid-chestxray-dataset at commit 584034a (GitHub archive, about 555 MiB) ->
  ``covid-chestxray-dataset/``; its ``metadata.csv`` must have the pinned sha256 of that commit's file.
- ``figure1``, ``actualmed``: agchung/Figure1-COVID-chestxray-dataset and agchung/Actualmed-COVID-chestxray-dataset
  (GitHub archives of ``master``: these repositories publish no release to pin to) -> folders of the same names.
- ``covidx_labels``: the COVIDx v5 and v9A split files of lindawangg/COVID-Net at commit 6599980 ->
  ``COVID-Net/labels/`` (the images come from the sets below: see the printed COVIDx note).
- ``covidx_ray_5k``: COVID-Xray-5k's ``data_upload_v2.zip`` (the Dropbox link of shervinmin/DeepCovid) ->
  ``data_upload_v2/``.

Checksums. A file with a pinned sha256 (``RemoteFile.sha256``: the COVID-Net split files and Cohen's metadata.csv,
computed from byte-for-byte copies) must match it. Archives cannot be checksummed in advance, so they are trusted
on first use: the sha256 of the first complete download is recorded in ``<data root>/cxrbench-downloads.json``
and every later download or re-check must match it (GitHub may regenerate an archive with other bytes; delete its
entry to accept the new one). A mismatch is a DownloadError naming the file and both checksums; the bad file is
kept beside the target as ``<name>.sha256-mismatch`` for inspection and never used.

Resuming. Data arrive in ``<name>.part``; an interrupted download leaves it, and the next run asks the server for
the rest (HTTP ``Range: bytes=<size>-``). A server that ignores the range (answers 200) is read from the start
again; a range beyond the end (416) means the part is complete and is verified as is.

Extracting. Archives are unpacked into a staging folder under the data root, member by member with tarfile's
``data`` filter, and moved into place only when complete. A member that would land outside the folder (``..``,
links out of it or to absolute paths, devices) or an unreadable archive is a DownloadError naming the archive and
the member; the staging folder is deleted, so nothing is left behind.

Not downloadable without an account (``SOURCES`` with ``manual``): the COVID-19 Radiography Database and the Kermany
pneumonia set (Kaggle), ChestX-ray14 (NIH, also on Kaggle), CheXpert (Stanford AIMI, registration) and the COVIDx
images. For the Kaggle ones the kaggle CLI is used when it is on PATH and configured (``~/.kaggle/kaggle.json`` or
KAGGLE_USERNAME and KAGGLE_KEY); otherwise, and for the rest, the exact steps are printed.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from datamodules.atomic import file_sha256

log = logging.getLogger(__name__)

LOCK_FILE = "cxrbench-downloads.json"
DOWNLOADS = ".downloads"  # archives are kept here (under the data root) after extraction, for re-checks
CHUNK = 1 << 20
TIMEOUT = 60
MARKER = ".cxrbench-source.json"  # written into an extracted folder: which archive (and sha256) it came from


class DownloadError(RuntimeError):
    """A download failed or did not match its checksum; the message names the file."""


@dataclass(frozen=True)
class RemoteFile:
    url: str
    target: str  # path under the data root: the file itself, or (archives) the archive under .downloads/
    sha256: str | None = None  # pinned checksum; None = trust on first use (lock file)
    extract_to: str | None = None  # archives: folder under the data root (a single top-level folder is stripped)
    check: tuple[tuple[str, str], ...] = ()  # (path inside extract_to, pinned sha256) verified after extraction


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    folder: str  # under the data root: where the DataModule finds it
    files: tuple[RemoteFile, ...] = ()
    manual: str = ""  # what to download and where to put it, for sets behind a login
    kaggle: str = ""  # Kaggle dataset slug, downloaded with the kaggle CLI when it is configured


COHEN_COMMIT = "584034a"
COVIDNET_COMMIT = "6599980"
COVIDNET_RAW = f"https://raw.githubusercontent.com/lindawangg/COVID-Net/{COVIDNET_COMMIT}/labels"
COHEN_METADATA_SHA256 = "e46ffab4cdeb4866491d32afe466baefd7acbcf268a75c260f81d8520b8664a0"
COVIDNET_LABELS = {  # sha256 of the byte-for-byte copies in shared/data/covidx-splits/labels (None: not copied there)
    "train_COVIDx5.txt": "9de231edb4c882f248b8eee549a1fa3fb91af0ba8dd52555a85660ad01967969",
    "test_COVIDx5.txt": "6a13db483a3cc7a6111da7ec81648ad1226bc57df996cb077c07f1561799ac3e",
    "train_COVIDx9A.txt": None,
    "test_COVIDx9A.txt": "048629233e9426f1b42ce1d86e898bdb1691ff8544d81fa44b1d6a3657d88871",
}


def _github_archive(repo: str, ref: str, folder: str, check: tuple = ()) -> RemoteFile:
    return RemoteFile(f"https://github.com/{repo}/archive/{ref}.tar.gz", f"{DOWNLOADS}/{repo.split('/')[1]}-{ref}.tar.gz",
                      extract_to=folder, check=check)


SOURCES: tuple[Source, ...] = (
    Source("cohen", "ieee8023 COVID-19 image data collection (Cohen et al.), commit 584034a", "covid-chestxray-dataset",
           (_github_archive("ieee8023/covid-chestxray-dataset", COHEN_COMMIT, "covid-chestxray-dataset",
                            (("metadata.csv", COHEN_METADATA_SHA256),)),)),
    Source("figure1", "Figure 1 COVID-19 chest X-ray dataset (agchung), master", "Figure1-COVID-chestxray-dataset",
           (_github_archive("agchung/Figure1-COVID-chestxray-dataset", "master", "Figure1-COVID-chestxray-dataset"),)),
    Source("actualmed", "Actualmed COVID-19 chest X-ray dataset (agchung), master", "Actualmed-COVID-chestxray-dataset",
           (_github_archive("agchung/Actualmed-COVID-chestxray-dataset", "master", "Actualmed-COVID-chestxray-dataset"),)),
    Source("covidx_labels", "COVIDx v5/v9A split files (lindawangg/COVID-Net, commit 6599980)", "COVID-Net",
           tuple(RemoteFile(f"{COVIDNET_RAW}/{name}", f"COVID-Net/labels/{name}", sha) for name, sha in COVIDNET_LABELS.items())),
    Source("covidx_ray_5k", "COVID-Xray-5k (Minaee et al., DeepCovid), data_upload_v2.zip", "data_upload_v2",
           (RemoteFile("https://www.dropbox.com/s/09b5nutjxotmftm/data_upload_v2.zip?dl=1", f"{DOWNLOADS}/data_upload_v2.zip", extract_to="data_upload_v2"),)),
    Source("covid19_radiography", "COVID-19 Radiography Database (Kaggle, Chowdhury et al. / Rahman et al.)", "COVID-19_Radiography_Dataset",
           kaggle="tawsifurrahman/covid19-radiography-database",
           manual="Sign in to Kaggle, download https://www.kaggle.com/datasets/tawsifurrahman/covid19-radiography-database "
                  "(archive.zip) and unzip it into {root}: the class folders must end up in {root}/COVID-19_Radiography_Dataset/"
                  "{{COVID,Normal,Viral Pneumonia,Lung_Opacity}}/."),
    Source("kermany_pneumonia", "Chest X-Ray Images (Pneumonia), Kermany et al. (Kaggle)", "chest_xray",
           kaggle="paultimothymooney/chest-xray-pneumonia",
           manual="Sign in to Kaggle, download https://www.kaggle.com/datasets/paultimothymooney/chest-xray-pneumonia "
                  "(archive.zip) and unzip it into {root}: you need {root}/chest_xray/{{train,val,test}}/{{NORMAL,PNEUMONIA}}/. "
                  "(Or Mendeley Data doi:10.17632/rscbjbr9sj, ChestXRay2017.zip, unzipped the same way.)"),
    Source("chestxray14", "NIH ChestX-ray14 (Wang et al.)", "ChestX-ray14",
           kaggle="nih-chest-xrays/data",
           manual="Download the 12 image archives images_001.tar.gz ... images_012.tar.gz and Data_Entry_2017_v2020.csv "
                  "(plus test_list.txt, train_val_list.txt) from https://nihcc.app.box.com/v/ChestXray-NIHCC (the NIH page "
                  "lists batch_download_zips.py) into {root}/ChestX-ray14/ and untar them there "
                  "({root}/ChestX-ray14/images/*.png or images_0NN/images/*.png; both are found)."),
    Source("chexpert", "CheXpert (Irvin et al.), Stanford AIMI", "CheXpert-v1.0-small",
           manual="Register at https://stanfordmlgroup.github.io/competitions/chexpert/ (Stanford AIMI shared datasets), "
                  "download CheXpert-v1.0-small.zip (11 GB; or the full CheXpert-v1.0) and unzip it into {root}: you need "
                  "{root}/CheXpert-v1.0-small/{{train.csv,valid.csv,train/,valid/}}."),
    Source("covidx_images", "COVIDx images (Wang et al., COVID-Net)", "COVID-Net/train",
           manual="COVIDx is assembled from several sets. Either download the Kaggle COVIDx CXR-2 release "
                  "(https://www.kaggle.com/datasets/andyczhao/covidx-cxr2; unzip into {root}/covidx-cxr2/ and read it with "
                  "version: null), or run COVID-Net's create_COVIDx.ipynb (github.com/lindawangg/COVID-Net) with the sets "
                  "above plus the RSNA Pneumonia Detection Challenge images (Kaggle) and put the resulting train/ and test/ "
                  "folders in {root}/COVID-Net/ beside labels/ (or give covidx the option images_dir). The split files come "
                  "with `covidx_labels`."),
)


# ----- HTTP with resume -----
def _sha256(path: Path) -> str:
    return file_sha256(path, CHUNK)


def fetch(url: str, destination: Path, *, quiet: bool = False) -> Path:
    """Download ``url`` to ``destination`` via ``<destination>.part``, continuing a partial download."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cxr-bench-download/1"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the part file is complete
            part.replace(destination)
            return destination
        raise DownloadError(f"{destination.name}: HTTP {error.code} {error.reason} from {url}") from None
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"{destination.name}: cannot reach {url} ({getattr(error, 'reason', error)}); "
                            f"run again to resume from {part}" if offset else f"{destination.name}: cannot reach {url} ({getattr(error, 'reason', error)})") from None
    with response:
        resumed = offset and response.status == 206
        if offset and not resumed:
            log.warning("%s: the server ignored the range request; downloading from the start", destination.name)
        total = response.headers.get("Content-Length")
        total = int(total) + (offset if resumed else 0) if total else None
        done = offset if resumed else 0
        if not quiet:
            print(f"{'resuming' if resumed else 'downloading'} {url} -> {destination}" + (f" at {done} of {total} bytes" if resumed else ""), file=sys.stderr)
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    done += len(block)
        except OSError as error:
            raise DownloadError(f"{destination.name}: download interrupted at {done} bytes ({error}); run again to resume from {part}") from None
    if total is not None and done < total:
        raise DownloadError(f"{destination.name}: got {done} of {total} bytes; run again to resume from {part}")
    part.replace(destination)
    return destination


# ----- checksums: pinned or trusted on first use -----
class Lock:
    """``<data root>/cxrbench-downloads.json``: the sha256 of every file trusted on first use, by URL."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_FILE
        self.entries = json.loads(self.path.read_text()) if self.path.exists() else {}

    def expected(self, url: str) -> str | None:
        return self.entries.get(url, {}).get("sha256")

    def record(self, url: str, target: str, sha256: str, size: int) -> None:
        self.entries[url] = {"file": target, "sha256": sha256, "bytes": size,
                             "first_downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)


def verify(path: Path, expected: str, *, what: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        bad = path.with_name(path.name + ".sha256-mismatch")
        path.replace(bad)
        raise DownloadError(f"{path.name}: sha256 {actual} does not match the {what} {expected}; the file is kept as {bad} "
                            f"and was not used")


def get_file(root: Path, remote: RemoteFile, lock: Lock, *, quiet: bool = False) -> Path:
    """The verified local copy of ``remote`` (downloaded or resumed if needed)."""
    target = root / remote.target
    pinned, trusted = remote.sha256, lock.expected(remote.url)
    if not target.exists():
        fetch(remote.url, target, quiet=quiet)
    if pinned:
        verify(target, pinned, what="pinned checksum")
    elif trusted:
        verify(target, trusted, what=f"checksum recorded at the first download in {lock.path}")
    else:
        lock.record(remote.url, remote.target, _sha256(target), target.stat().st_size)
        log.info("%s: first download, sha256 recorded in %s (trust on first use)", target.name, lock.path)
    return target


# ----- archives -----
def extract(archive: Path, root: Path, remote: RemoteFile) -> Path:
    """Unpack ``archive`` into ``root/remote.extract_to`` (once per archive checksum), then check its pinned files."""
    folder = root / remote.extract_to
    digest = _sha256(archive)
    marker = folder / MARKER
    if not (marker.exists() and json.loads(marker.read_text()).get("sha256") == digest):
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
        try:
            _unpack(archive, staging)
            entries = [p for p in staging.iterdir() if p.name != "__MACOSX"]
            top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
            if folder.exists():
                shutil.rmtree(folder)
            shutil.move(str(top), str(folder))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        marker.write_text(json.dumps({"archive": archive.name, "url": remote.url, "sha256": digest}) + "\n")
    for relative, sha256 in remote.check:
        inner = folder / relative
        if not inner.is_file():
            raise DownloadError(f"{archive.name}: {relative} is missing from the archive (expected in {folder})")
        if _sha256(inner) != sha256:
            raise DownloadError(f"{inner}: sha256 {_sha256(inner)} does not match the pinned {sha256} (wrong commit?)")
    return folder


def _already_extracted(root: Path, remote: RemoteFile, lock: Lock) -> bool:
    """The folder holds this archive's content (its marker names the checksum the lock trusts): no download needed,
    even when the archive under .downloads/ was deleted to save space."""
    marker = root / remote.extract_to / MARKER
    if not marker.exists():
        return False
    expected = remote.sha256 or lock.expected(remote.url)
    return expected is not None and json.loads(marker.read_text()).get("sha256") == expected


REFUSED = {  # tarfile's "data" filter errors, in words
    "OutsideDestinationError": "its path leads out of the archive's folder",
    "AbsolutePathError": "an absolute path",
    "AbsoluteLinkError": "a link to an absolute path",
    "LinkOutsideDestinationError": "a link that points out of the archive's folder",
    "SpecialFileError": "a device or other special file",
}


def _unpack(archive: Path, into: Path) -> None:
    """Unpack into ``into`` (a staging folder the caller deletes on error); a refused member or an unreadable
    archive is a DownloadError naming the archive and the member."""
    name = archive.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        _untar(archive, into)
    elif name.endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as package:
                for member in package.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise DownloadError(f"{archive.name}: unsafe path {member!r} in the archive; nothing was extracted")
                package.extractall(into)
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:
            raise DownloadError(f"{archive.name}: not a readable zip archive ({error}); nothing was extracted; "
                                f"delete it and its entry in {LOCK_FILE} to download it again") from None
    else:
        raise DownloadError(f"{archive.name}: unknown archive type")


def _untar(archive: Path, into: Path) -> None:
    """Extract member by member with tarfile's "data" filter, so a refusal names its member."""
    member = None
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, into, filter="data")
                else:  # Python without the extraction filters: refuse what the "data" filter would
                    _check_member(archive, member)
                    tar.extract(member, into)  # noqa: S202
    except tarfile.FilterError as error:
        reason = REFUSED.get(type(error).__name__, str(error))
        raise DownloadError(f"{archive.name}: member {error.tarinfo.name!r} refused ({reason}); nothing was extracted") from None
    except (tarfile.TarError, EOFError, zlib.error) as error:
        where = f" after member {member.name!r}" if member is not None else ""
        detail = str(error).splitlines()[0].rstrip(":") if str(error) else type(error).__name__
        raise DownloadError(f"{archive.name}: not a readable tar archive{where} ({detail}); nothing was extracted; "
                            f"delete it and its entry in {LOCK_FILE} to download it again") from None


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    """The "data" filter's refusals, for Pythons that lack it: paths or links out of the folder, special files."""
    paths = [member.name] + ([member.linkname] if member.issym() or member.islnk() else [])
    outside = any(p.startswith("/") or ".." in Path(p).parts for p in paths)
    if outside or not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        reason = "its path or link leads out of the archive's folder" if outside else "a device or other special file"
        raise DownloadError(f"{archive.name}: member {member.name!r} refused ({reason}); nothing was extracted")


# ----- the sets behind a login -----
def kaggle_configured() -> bool:
    has_key = (Path.home() / ".kaggle" / "kaggle.json").is_file() or (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))
    return bool(has_key and shutil.which("kaggle"))


def manual_source(root: Path, source: Source, *, use_kaggle: bool | None = None) -> bool:
    """Fetch a Kaggle set with the kaggle CLI when configured, else print what to do. True when it is in place."""
    destination = root / source.folder
    if destination.exists() and any(destination.iterdir()):
        print(f"{source.name}: found {destination}")
        return True
    use_kaggle = kaggle_configured() if use_kaggle is None else use_kaggle
    if source.kaggle and use_kaggle:
        into = root / source.folder if source.name == "chestxray14" else root
        into.mkdir(parents=True, exist_ok=True)
        command = ["kaggle", "datasets", "download", "-d", source.kaggle, "-p", str(into), "--unzip"]
        print(f"{source.name}: {' '.join(command)}")
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise DownloadError(f"{source.name}: the kaggle CLI failed (exit {result.returncode}); accept the dataset's rules on its Kaggle page and retry")
        return True
    print(f"{source.name} ({source.description}): not downloadable without an account.\n  " + source.manual.format(root=root)
          + (f"\n  With the kaggle CLI configured (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY), `make data` fetches it: "
             f"kaggle datasets download -d {source.kaggle} --unzip" if source.kaggle else ""))
    return False


def download_all(root: str | Path, *, only: list[str] | None = None, sources: tuple[Source, ...] = SOURCES, quiet: bool = False,
                 use_kaggle: bool | None = None) -> int:
    """Download or explain every source (or those in ``only``); 0 when all public ones are in place."""
    root = Path(root).expanduser()
    known = {s.name: s for s in sources}
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        raise DownloadError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(known)}")
    root.mkdir(parents=True, exist_ok=True)
    lock = Lock(root)
    for source in (known[n] for n in (only or known)):
        if not source.files:
            manual_source(root, source, use_kaggle=use_kaggle)
            continue
        for remote in source.files:
            if remote.extract_to and _already_extracted(root, remote, lock):
                if not quiet:
                    print(f"{source.name}: {root / remote.extract_to} already extracted from the verified archive")
                continue
            path = get_file(root, remote, lock, quiet=quiet)
            if remote.extract_to:
                path = extract(path, root, remote)
            if not quiet:
                print(f"{source.name}: {path} verified")
    return 0

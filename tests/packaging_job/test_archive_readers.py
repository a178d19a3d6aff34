"""A hub archive is read only if every tar program reads the same files from it.

Python's tarfile and GNU tar part ways on a global pax header and on sparse and
contiguous files; such an archive is refused in one line, and nothing is
extracted. What Python's tarfile itself writes (per-member pax headers for long
or non-ASCII names, GNU long names) is read as before.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest
from packager.archive import extract
from packager.errors import PackagingError

BLOCK = tarfile.BLOCKSIZE
END = bytes(2 * BLOCK)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE, pax: dict[str, str] | None = None) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.pax_headers = size, kind, pax or {}
    return info.tobuf(tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT)


def member(name: str, data: bytes, kind: bytes = tarfile.REGTYPE, pax: dict[str, str] | None = None) -> bytes:
    return header(name, len(data), kind, pax) + padded(data)


def extracted(body: bytes, tmp_path) -> list[str]:
    destination = tmp_path / "out"
    destination.mkdir()
    extract(io.BytesIO(gzip.compress(body)), str(destination), "the hub")
    return sorted(os.path.relpath(os.path.join(d, f), destination) for d, _, fs in os.walk(destination) for f in fs)


# The global header's size (one block) is the first file's; its own header's size
# spans the second file too. tarfile reads one file and skips the rest as its
# data, GNU tar applies the global size and reads a second file, evil.py.
EVIL = member("m/evil.py", b"print('evil')\n")
HIDING = (
    tarfile.TarInfo.create_pax_global_header({"size": str(BLOCK)})
    + header("m/ok.txt", BLOCK + len(EVIL))
    + padded(b"harmless")
    + EVIL
)


REFUSED = r"^Refusing the archive from the hub: {}.*point the handle at that copy\.$"


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (HIDING + END, REFUSED.format(r"it has a global pax header \(type 'g'\) setting size,")),
        (member("m/s.bin", b"", tarfile.GNUTYPE_SPARSE) + END, REFUSED.format("'m/s.bin' is a sparse file")),
        (
            member("m/s.bin", b"ab", pax={"GNU.sparse.map": "0,2", "GNU.sparse.size": "2"}) + END,
            REFUSED.format("'m/s.bin' is a sparse file"),
        ),
        # tarfile takes the name from the field, and reads the data as a plain file's.
        (
            member("m/s.bin", b"ab", pax={"GNU.sparse.name": "m/other.bin"}) + END,
            REFUSED.format("'m/other.bin' is a sparse file"),
        ),
        (member("m/c.bin", b"ab", tarfile.CONTTYPE) + END, REFUSED.format("'m/c.bin' is a tar member of type '7'")),
    ],
    ids=["global size hiding a file", "GNU sparse", "pax sparse", "pax sparse name", "contiguous"],
)
def test_an_archive_tar_programs_read_differently_is_refused_and_nothing_extracted(tmp_path, body, refusal):
    with pytest.raises(PackagingError, match=refusal):
        extracted(body, tmp_path)
    assert os.listdir(tmp_path / "out") == []


def test_a_global_header_after_the_last_member_is_refused_as_corrupt(tmp_path):
    # tarfile reads on to the member the header would apply to, and finds none.
    body = member("m/ok.txt", b"ok") + tarfile.TarInfo.create_pax_global_header({"comment": "x"}) + END
    with pytest.raises(PackagingError, match=r"^The archive from the hub is truncated or corrupt after m/ok.txt"):
        extracted(body, tmp_path)


def test_a_global_header_that_only_describes_is_read(tmp_path):
    # As `git archive` writes one: a comment with the commit id, before the first member.
    body = tarfile.TarInfo.create_pax_global_header({"comment": "0" * 40}) + member("m/ok.txt", b"ok") + END
    (tmp_path / "read").mkdir()
    assert extracted(body, tmp_path / "read") == ["m/ok.txt"]
    with_path = tarfile.TarInfo.create_pax_global_header({"comment": "x", "path": "m/other.txt"})
    with pytest.raises(PackagingError, match=REFUSED.format(r"it has a global pax header \(type 'g'\) setting path,")):
        extracted(with_path + member("m/ok.txt", b"ok") + END, tmp_path)


@pytest.mark.parametrize("form", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_archives_pythons_tarfile_writes_are_read_whatever_their_names(tmp_path, form):
    long_name = "m/" + "d" * 120 + "/variables.data" if form != tarfile.USTAR_FORMAT else "m/short.txt"
    names = [long_name, "m/vocabulaire-é.txt" if form == tarfile.PAX_FORMAT else "m/vocab.txt"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=form) as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"ok"))
    assert extracted(buffer.getvalue(), tmp_path) == sorted(names)

"""Archives the archive tests build themselves: bombs, traversal, encryption
and Windows names. Standard library, plus bsdtar (libarchive-tools) for the
encrypted zips, which Python cannot write."""

import bz2
import gzip
import io
import lzma
import struct
import subprocess
import tarfile
import zipfile
import zlib


def nested_zip(levels):
    """A zip in a zip ... `levels` deep, a text file at the bottom."""
    data, name = b"bottom\n", "bottom.txt"
    for level in range(levels):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        data, name = out.getvalue(), f"level{levels - level}.zip"
    return data


def many_members_zip(count):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for i in range(count):
            z.writestr(f"f{i}.txt", b"x")
    return out.getvalue()


def zeros_zip(path, mebibytes):
    """One member of `mebibytes` MiB of zeros, written as it is compressed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(mebibytes):
                f.write(chunk)


def zeros_gz(path, mebibytes):
    with gzip.open(path, "wb") as f:
        f.write(bytes(mebibytes << 20))


def repeated_gz(path, mebibytes):
    """A gzip of `mebibytes` MiB of one letter: gzip declares no size up
    front, so only counting the bytes as they come stops it. (Not zeros:
    libarchive reads zeros as the end of an empty tar.)"""
    with gzip.open(path, "wb", compresslevel=9) as f:
        chunk = b"A" * (1 << 20)
        for _ in range(mebibytes):
            f.write(chunk)


def overlapping_zip(count, kernel_bytes):
    """David Fifield's overlapping-entry bomb: each entry's deflate stream
    quotes the next entries' local headers in stored blocks and ends in one
    shared kernel, so `count` entries expand to about count * kernel_bytes."""
    def local_header(name, crc, csize, usize):
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, csize, usize, len(name), 0) + name

    def central_header(name, crc, csize, usize, offset):
        return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, csize, usize,
                           len(name), 0, 0, 0, 0, 0, offset) + name

    def quote(block):
        return b"\x00" + struct.pack("<HH", len(block), len(block) ^ 0xFFFF)

    plain = bytes(kernel_bytes)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = compressor.compress(plain) + compressor.flush()
    names = [b"%04d.bin" % i for i in range(count)]
    headers = [None] * count
    tail, prefix = kernel, b""  # entry i's compressed data, and what it expands to before the kernel
    for i in reversed(range(count)):
        crc = zlib.crc32(plain, zlib.crc32(prefix))
        header = local_header(names[i], crc, len(tail), len(prefix) + len(plain))
        headers[i] = (header, crc, len(tail), len(prefix) + len(plain))
        tail, prefix = quote(header) + header + tail, header + prefix
    body, offsets = b"", []
    for i in range(count):
        offsets.append(len(body))
        body += headers[i][0]
        if i + 1 < count:
            body += quote(headers[i + 1][0])
    body += kernel
    directory = b"".join(central_header(names[i], *headers[i][1:], offsets[i]) for i in range(count))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end


def compressed(kind, data, name="memo.txt"):
    """`data` as a tar (one member, `name`) under `kind` ("tar.gz",
    "tar.bz2", "tar.xz") or compressed alone ("gz", "bz2", "xz")."""
    if kind.startswith("tar."):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:" + kind[4:]) as t:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        return out.getvalue()
    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](data)


def traversal_tar():
    """A tar with a ../ path, an absolute path, a symlink and a plain member."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in (("../evil.txt", b"up\n"), ("/etc/passwd.txt", b"root\n"),
                           ("docs/readme.txt", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("docs/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        t.addfile(link)
    return out.getvalue()


def overspending_zip():
    """A deflated zip of a stored zip whose member is named for the hostile
    worker's "MUGAI-TEST:overspend" (visible in the inner zip's bytes only)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_STORED) as z:
        z.writestr("MUGAI-TEST:overspend.txt", b"x\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.zip", inner.getvalue())
    data = outer.getvalue()
    assert b"MUGAI-TEST" not in data
    return data


def mixed_zip():
    """A text file and a shell script, which is blocked."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("setup.sh", b"#!/bin/sh\nrm -rf /\n")
        z.writestr("memo.txt", b"hello\n")
    return out.getvalue()


def cp932_zip(names):
    """A zip whose member names are CP932 bytes without the UTF-8 flag, as
    Windows' Explorer writes them. zipfile writes a name that is not ASCII
    as flagged UTF-8, so each goes in as an ASCII stand-in of the same
    length, replaced by its CP932 bytes afterwards (the CRCs cover only the
    contents)."""
    out = io.BytesIO()
    encoded = [name.encode("cp932") for name in names]
    stand_ins = [(b"%d" % i).rjust(len(e), b"#") for i, e in enumerate(encoded)]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, stand_in in zip(names, stand_ins):
            z.writestr(stand_in.decode("ascii"), f"{name}\n".encode("utf-8"))
    data = out.getvalue()
    for stand_in, name in zip(stand_ins, encoded):
        assert data.count(stand_in) == 2  # the local header and the central directory
        data = data.replace(stand_in, name)
    return data


def encrypted_zip(directory, encryption):
    """A zip of one text file, encrypted with `encryption` ("zipcrypt" or
    "aes256") by libarchive's bsdtar."""
    with open(f"{directory}/secret.txt", "wb") as f:
        f.write(b"secret\n")
    path = f"{directory}/{encryption}.zip"
    subprocess.run(["bsdtar", "--format", "zip", "--options", f"zip:encryption={encryption}",
                    "--passphrase", "password", "-cf", path, "-C", directory, "secret.txt"],
                   check=True)
    with open(path, "rb") as f:
        return f.read()

"""SFTP (and so OpenSSH 9's ``scp``, and ``scp -O`` through asyncssh) for one machine:
files of the order's directory, as the machine sees them.

The SFTP root is the order's directory, so ``/root/x`` is the file the machine's shell
sees as ``/root/x`` under bubblewrap (``root/x`` of the order directory); relative paths
start at ``/root``. Symbolic links are followed inside that root the way the machine
would follow them (an absolute link target names a path in the machine), so no link can
reach a host file outside it. Files are read and written by the sandbox process itself.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from typing import Any

import asyncssh

__all__ = ["MachineSFTP"]

_MAX_LINKS = 40


class MachineSFTP(asyncssh.SFTPServer):
    """asyncssh's SFTP server confined to one order's directory."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], root: str, home: bytes = b"/root"):
        super().__init__(chan, chroot=root.encode())
        self._root = os.path.realpath(root).encode()
        self._home = home

    def _virtual(self, path: bytes, follow: bool) -> bytes:
        """``path`` as an absolute path of the machine, links resolved inside the root."""
        if not path.startswith(b"/"):
            path = self._home + b"/" + path
        pending = [p for p in posixpath.normpath(path).split(b"/") if p]
        done: list[bytes] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == b".":
                continue
            if part == b"..":
                if done:
                    done.pop()
                continue
            host = self._root + b"/" + b"/".join([*done, part])
            if (pending or follow) and os.path.islink(host):
                hops += 1
                if hops > _MAX_LINKS:
                    raise asyncssh.SFTPFailure("Too many levels of symbolic links")
                target = os.readlink(host)
                if target.startswith(b"/"):
                    done = []
                pending = [p for p in target.split(b"/") if p] + pending
                continue
            done.append(part)
        return b"/" + b"/".join(done)

    def map_path(self, path: bytes) -> bytes:
        # Every directory on the way is resolved inside the root; the last part is left
        # alone here (lstat, readlink, remove and rename act on a link itself).
        return self._root + self._virtual(path, follow=False).rstrip(b"/")

    def _follow(self, path: bytes) -> bytes:
        return self._virtual(path, follow=True)

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        return super().open(self._follow(path), pflags, attrs)

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> Any:
        return super().open56(self._follow(path), desired_access, flags, attrs)

    def stat(self, path: bytes) -> Any:
        return super().stat(self._follow(path))

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> Any:
        return super().setstat(self._follow(path), attrs)

    def scandir(self, path: bytes) -> Any:
        return super().scandir(self._follow(path))

    def statvfs(self, path: bytes) -> Any:
        return super().statvfs(self._follow(path))

    def realpath(self, path: bytes) -> Any:
        return self._follow(path)

    def readlink(self, path: bytes) -> Any:
        target: bytes = os.readlink(self.map_path(path))
        return target

    def link(self, oldpath: bytes, newpath: bytes) -> Any:
        return super().link(self._follow(oldpath), newpath)

    def symlink(self, oldpath: bytes, newpath: bytes) -> Any:
        # The link is stored as given: it is resolved inside the machine when followed.
        os.symlink(oldpath, self.map_path(newpath))

    def exit(self) -> None:
        # sshd's sftp-server exits 0 when the client is done; without an exit status
        # OpenSSH's scp reports failure even though every file was transferred.
        chan = self.channel
        with contextlib.suppress(Exception):
            if not chan.is_closing():
                chan.exit(0)

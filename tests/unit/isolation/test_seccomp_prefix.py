"""The hand-written BPF in front of libseccomp's program, run by a small
interpreter of the three instructions it uses."""

from __future__ import annotations

import errno
import struct

import pytest

from joblet.isolation.seccomp import PERSONALITY_ALLOWED, personality_prefix

ARCH, OTHER_ARCH, PERSONALITY, OTHER_CALL = 0xC000003E, 0x40000003, 135, 39
FALLS_THROUGH = -1


def run(program: bytes, arch: int, nr: int, arg0: int, byteorder: str) -> int:
    """What the program returns for one call, FALLS_THROUGH if it runs off
    its end (into libseccomp's program)."""
    order = "<" if byteorder == "little" else ">"
    data = struct.pack(f"{order}iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    pc, acc = 0, 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from(f"{order}I", data, k)[0]
        elif code == 0x15:  # jeq #k
            pc += jt if acc == k else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        pc += 1
    return FALLS_THROUGH


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_personality_values(byteorder: str) -> None:
    program = personality_prefix(ARCH, PERSONALITY, byteorder)
    eperm = 0x00050000 | errno.EPERM
    for value in PERSONALITY_ALLOWED:
        assert run(program, ARCH, PERSONALITY, value, byteorder) == FALLS_THROUGH
        # the kernel takes an unsigned int: high bits do not matter
        assert run(program, ARCH, PERSONALITY, value | 1 << 40, byteorder) == FALLS_THROUGH
    for value in (0x1, 0x0040000, 0x0400000, 0x20001, 0xFFFFFFFE):
        assert run(program, ARCH, PERSONALITY, value, byteorder) == eperm


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_other_calls_and_architectures_fall_through(byteorder: str) -> None:
    program = personality_prefix(ARCH, PERSONALITY, byteorder)
    assert run(program, ARCH, OTHER_CALL, 0x0040000, byteorder) == FALLS_THROUGH
    assert run(program, OTHER_ARCH, PERSONALITY, 0x0040000, byteorder) == FALLS_THROUGH

"""A BPF_PROG_TYPE_CGROUP_DEVICE program built from device rules (pure).

The shape of runc's and crun's device filter: read type, access, major and
minor from struct bpf_cgroup_dev_ctx, one compare block per rule that jumps
to the next block on a mismatch, return 1 to allow, else 0. Instructions are
packed with struct: no compiler at run time.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence

from joblet.resources.device_rules import DeviceRule

# include/uapi/linux/bpf.h
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K (32-bit)
_ALU_RSH_K = 0x74
_ALU_MOV_K = 0xB4
_ALU_MOV_X = 0xBC
_JMP_JNE_K = 0x55
_JMP_JNE_X = 0x5D
_EXIT = 0x95
# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
# access_type is (access << 16) | type.
DEVCG_DEV_BLOCK, DEVCG_DEV_CHAR = 1, 2
DEVCG_ACC_MKNOD, DEVCG_ACC_READ, DEVCG_ACC_WRITE = 1, 2, 4
_TYPES = {"b": DEVCG_DEV_BLOCK, "c": DEVCG_DEV_CHAR}
_ACCESS_BITS = {"m": DEVCG_ACC_MKNOD, "r": DEVCG_ACC_READ, "w": DEVCG_ACC_WRITE}
_ALL_ACCESS = DEVCG_ACC_MKNOD | DEVCG_ACC_READ | DEVCG_ACC_WRITE
LICENSE = b"Apache\0"  # as runc; the helpers a device program calls need no GPL
# Registers: R1 the context, R2 type, R3 access, R4 major, R5 minor.
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }
    # The bitfield order is the little-endian one (x86_64, aarch64).
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def access_bits(access: str) -> int:
    return sum(_ACCESS_BITS[a] for a in set(access))


def _prelude() -> list[bytes]:
    return [
        _insn(_LDX_MEM_W, _R2, _R1, 0),
        _insn(_ALU_AND_K, _R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, _R3, _R1, 0),
        _insn(_ALU_RSH_K, _R3, imm=16),
        _insn(_LDX_MEM_W, _R4, _R1, 4),
        _insn(_LDX_MEM_W, _R5, _R1, 8),
    ]


def _rule_block(rule: DeviceRule) -> list[bytes]:
    """The tests of one rule; each jump offset is patched to the block's end."""
    tests: list[tuple[int, int, int, int]] = [(_JMP_JNE_K, _R2, 0, _TYPES[rule.kind])]
    bits = access_bits(rule.access)
    body: list[bytes] = []
    if bits != _ALL_ACCESS:
        # Allowed only when every bit asked for is in the rule: (access & bits) == access.
        body += [_insn(_ALU_MOV_X, _R1, _R3), _insn(_ALU_AND_K, _R1, imm=bits)]
        tests.append((_JMP_JNE_X, _R1, _R3, 0))
    if rule.major is not None:
        tests.append((_JMP_JNE_K, _R4, 0, rule.major))
    if rule.minor is not None:
        tests.append((_JMP_JNE_K, _R5, 0, rule.minor))
    allow = [_insn(_ALU_MOV_K, _R0, imm=1), _insn(_EXIT)]
    out: list[bytes] = []
    # The type test comes first, then the access computation and the rest.
    order = [tests[0], *([None] if body else []), *tests[1:]]
    total = len(tests) + len(body) + len(allow)
    for item in order:
        if item is None:
            out += body
            continue
        code, dst, src, imm = item
        out.append(_insn(code, dst, src, off=total - len(out) - 1, imm=imm))
    return out + allow


def build_program(rules: Sequence[DeviceRule]) -> bytes:
    """The program's instructions, 8 bytes each: allow what a rule allows, deny all else."""
    if sys.byteorder != "little":
        raise NotImplementedError("the BPF device filter is built for little-endian hosts")
    insns = _prelude()
    for rule in rules:
        insns += _rule_block(rule)
    insns += [_insn(_ALU_MOV_K, _R0, imm=0), _insn(_EXIT)]
    return b"".join(insns)


def instruction_count(program: bytes) -> int:
    return len(program) // 8


def evaluate(program: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Run `program` on one device access: a tiny interpreter of the opcodes
    build_program emits, so the program's logic is tested without a kernel."""
    regs = [0] * 11
    ctx = ((access_bits(access) << 16) | _TYPES[kind], major, minor)
    pc = 0
    while True:
        code, regbyte, off, imm = struct.unpack_from("<BBhi", program, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == _LDX_MEM_W:
            regs[dst] = ctx[off // 4]
        elif code == _ALU_AND_K:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == _ALU_RSH_K:
            regs[dst] >>= imm
        elif code == _ALU_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == _ALU_MOV_X:
            regs[dst] = regs[src]
        elif code == _JMP_JNE_K:
            pc += off if regs[dst] != imm & 0xFFFFFFFF else 0
        elif code == _JMP_JNE_X:
            pc += off if regs[dst] != regs[src] else 0
        elif code == _EXIT:
            return regs[_R0]
        else:  # pragma: no cover
            raise ValueError(f"unknown opcode {code:#x}")

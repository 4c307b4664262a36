package kernel

import (
	"encoding/binary"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dropping frames needs a tc action, and hosts differ in which action
// modules they have (this project's build host has no act_gact, so no
// `action drop`). cls_bpf in direct-action mode needs nothing else: a few
// eBPF instructions return TC_ACT_SHOT for the frames to drop. These are
// generated here instruction by instruction, so no compiler or object
// file is involved.

const (
	tcActUnspec = -1 // go on with the next filter
	tcActShot   = 2  // drop
)

// insn is one eBPF instruction (struct bpf_insn).
type insn struct {
	code uint8
	regs uint8 // src<<4 | dst
	off  int16
	imm  int32
}

func (i insn) bytes() []byte {
	b := make([]byte, 8)
	b[0], b[1] = i.code, i.regs
	binary.LittleEndian.PutUint16(b[2:], uint16(i.off))
	binary.LittleEndian.PutUint32(b[4:], uint32(i.imm))
	return b
}

const (
	opMovReg   = 0x07 | 0xb0 | 0x08 // ALU64 MOV X
	opMovImm   = 0x07 | 0xb0        // ALU64 MOV K
	opLdAbsW   = 0x00 | 0x20 | 0x00 // LD ABS W: r0 = ntohl(*(u32 *)(skb + imm))
	opLdAbsH   = 0x00 | 0x20 | 0x08 // LD ABS H
	opJeq32Imm = 0x06 | 0x10        // JMP32 JEQ K
	opJne32Imm = 0x06 | 0x50        // JMP32 JNE K
	opExit     = 0x95
)

// dropAllProgram drops every frame.
func dropAllProgram() []insn {
	return []insn{{code: opMovImm, imm: tcActShot}, {code: opExit}}
}

// dropFromProgram drops frames whose source MAC is one of macs and lets
// the others through. cls_bpf puts the MAC header at offset 0 on ingress
// and egress alike.
func dropFromProgram(macs []net.HardwareAddr) []insn {
	p := []insn{
		{code: opMovReg, regs: 1<<4 | 6}, // r6 = skb (LD ABS reads through r6)
		{code: opLdAbsW, imm: 6},         // r0 = src MAC bytes 0-3
		{code: opMovReg, regs: 0<<4 | 7}, // r7 = r0
		{code: opLdAbsH, imm: 10},        // r0 = src MAC bytes 4-5
	}
	// Two instructions per MAC; the drop block follows the pass block.
	n := len(macs)
	for i, m := range macs {
		hi := int32(binary.BigEndian.Uint32(m[0:4]))
		lo := int32(binary.BigEndian.Uint16(m[4:6]))
		left := 2*(n-i) - 2 // instructions of the MACs after this one
		p = append(p,
			insn{code: opJne32Imm, regs: 7, off: 1, imm: hi},
			insn{code: opJeq32Imm, regs: 0, off: int16(left + 2), imm: lo}, // over the rest and the pass block
		)
	}
	return append(p,
		insn{code: opMovImm, imm: tcActUnspec}, insn{code: opExit},
		insn{code: opMovImm, imm: tcActShot}, insn{code: opExit},
	)
}

// loadProgram loads a sched_cls program and returns its fd.
func loadProgram(prog []insn, name string) (int, error) {
	var code []byte
	for _, i := range prog {
		code = append(code, i.bytes()...)
	}
	license := []byte("GPL\x00")
	logBuf := make([]byte, 4096)
	attr := struct {
		progType    uint32
		insnCnt     uint32
		insns       uint64
		license     uint64
		logLevel    uint32
		logSize     uint32
		logBuf      uint64
		kernVersion uint32
		progFlags   uint32
		progName    [16]byte
	}{
		progType: unix.BPF_PROG_TYPE_SCHED_CLS,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	copy(attr.progName[:15], name) // letters, digits, _ and . only
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		log := string(logBuf[:clen(logBuf)])
		return -1, fmt.Errorf("load eBPF drop filter: %w: %s", errno, log)
	}
	return int(fd), nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

;; csum.wat - RFC 1071 sum of a byte range with WebAssembly SIMD.
;;
;; Assembled with npm wabt's wat2wasm (SIMD is on by default) into the bytes
;; embedded in csum_wasm.ts; see that file for the command line.
;;
;; sum(p, n) returns the 16-bit one's-complement sum (folded, not inverted) of
;; the n bytes at p, read as big-endian 16-bit words with an odd trailing byte
;; padded by a zero byte. p may have any alignment.
;;
;; The loads are little-endian; the one's-complement sum does not depend on
;; byte order, so the folded little-endian sum only needs a final byte swap.
;; The main loop adds four 16-byte loads per iteration into four i32x4
;; accumulators with i32x4.extadd_pairwise_i16x8_u: each lane grows by at most
;; 2 * 65535 per load, so 16384 iterations (1 MiB) cannot overflow a lane.
;; After each such chunk the lanes are widened and added into an i64 total.
;;
;; The memory is exported: checksum.ts grows it once, right after
;; instantiation and before taking any view of it, to its fixed size (a
;; copy-in scratch area, then an arena for csumWasmAlloc()); it never grows
;; again, since growing would detach every view.
(module
  (memory (export "memory") 2)

  ;; adds the four u32 lanes of $v into an i64
  (func $widen (param $v v128) (result i64)
    (local $w v128)
    (local.set $w
      (i64x2.add
        (i64x2.extend_low_i32x4_u (local.get $v))
        (i64x2.extend_high_i32x4_u (local.get $v))))
    (i64.add
      (i64x2.extract_lane 0 (local.get $w))
      (i64x2.extract_lane 1 (local.get $w))))

  (func (export "sum") (param $p i32) (param $n i32) (result i32)
    (local $a0 v128)
    (local $a1 v128)
    (local $a2 v128)
    (local $a3 v128)
    (local $chunk i32)
    (local $end i32)
    (local $t i64)

    ;; 64 bytes per iteration, in chunks of at most 1 MiB
    (block $done64
      (loop $outer
        (br_if $done64 (i32.lt_u (local.get $n) (i32.const 64)))
        (local.set $chunk (i32.and (local.get $n) (i32.const -64)))
        (if (i32.gt_u (local.get $chunk) (i32.const 0x100000))
          (then (local.set $chunk (i32.const 0x100000))))
        (local.set $end (i32.add (local.get $p) (local.get $chunk)))
        (local.set $n (i32.sub (local.get $n) (local.get $chunk)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $a3 (v128.const i64x2 0 0))
        (loop $inner
          (local.set $a0 (i32x4.add (local.get $a0)
            (i32x4.extadd_pairwise_i16x8_u (v128.load offset=0 align=1 (local.get $p)))))
          (local.set $a1 (i32x4.add (local.get $a1)
            (i32x4.extadd_pairwise_i16x8_u (v128.load offset=16 align=1 (local.get $p)))))
          (local.set $a2 (i32x4.add (local.get $a2)
            (i32x4.extadd_pairwise_i16x8_u (v128.load offset=32 align=1 (local.get $p)))))
          (local.set $a3 (i32x4.add (local.get $a3)
            (i32x4.extadd_pairwise_i16x8_u (v128.load offset=48 align=1 (local.get $p)))))
          (local.set $p (i32.add (local.get $p) (i32.const 64)))
          (br_if $inner (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $t (i64.add (local.get $t)
          (i64.add
            (i64.add (call $widen (local.get $a0)) (call $widen (local.get $a1)))
            (i64.add (call $widen (local.get $a2)) (call $widen (local.get $a3))))))
        (br $outer)))

    ;; 16 bytes at a time (at most three times)
    (local.set $a0 (v128.const i64x2 0 0))
    (block $done16
      (loop $l16
        (br_if $done16 (i32.lt_u (local.get $n) (i32.const 16)))
        (local.set $a0 (i32x4.add (local.get $a0)
          (i32x4.extadd_pairwise_i16x8_u (v128.load align=1 (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $n (i32.sub (local.get $n) (i32.const 16)))
        (br $l16)))
    (local.set $t (i64.add (local.get $t) (call $widen (local.get $a0))))

    ;; 2 bytes at a time (at most seven times)
    (block $done2
      (loop $l2
        (br_if $done2 (i32.lt_u (local.get $n) (i32.const 2)))
        (local.set $t (i64.add (local.get $t) (i64.load16_u align=1 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 2)))
        (local.set $n (i32.sub (local.get $n) (i32.const 2)))
        (br $l2)))

    ;; a trailing byte is the high byte of its big-endian word: the low byte
    ;; of a little-endian one
    (if (local.get $n)
      (then (local.set $t (i64.add (local.get $t) (i64.load8_u (local.get $p))))))

    ;; fold 64 -> 32 -> 16 bits
    (local.set $t (i64.add (i64.and (local.get $t) (i64.const 0xffffffff))
                           (i64.shr_u (local.get $t) (i64.const 32))))
    (local.set $t (i64.add (i64.and (local.get $t) (i64.const 0xffffffff))
                           (i64.shr_u (local.get $t) (i64.const 32))))
    (local.set $t (i64.add (i64.and (local.get $t) (i64.const 0xffff))
                           (i64.shr_u (local.get $t) (i64.const 16))))
    (local.set $t (i64.add (i64.and (local.get $t) (i64.const 0xffff))
                           (i64.shr_u (local.get $t) (i64.const 16))))
    (local.set $t (i64.add (i64.and (local.get $t) (i64.const 0xffff))
                           (i64.shr_u (local.get $t) (i64.const 16))))

    ;; byte swap to big-endian order
    (i32.or
      (i32.shl (i32.and (i32.wrap_i64 (local.get $t)) (i32.const 0xff)) (i32.const 8))
      (i32.shr_u (i32.wrap_i64 (local.get $t)) (i32.const 8))))
)

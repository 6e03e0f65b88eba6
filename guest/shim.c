/*
 * mcfields guest: the only code that runs inside the WebAssembly sandbox.
 *
 * Monocypher is compiled into this one translation unit; only the functions
 * below are exported (no --export-all), so the host cannot reach anything
 * else.  The host owns the placement of a single "frame" in linear memory,
 * writes every input into it with one copy, and makes one call per
 * operation.  Each call wipes what is secret before it returns, so no key
 * stays in guest memory between calls.
 *
 * Frame layouts: see the comment above mc_seal (seal/open, one or many
 * values per call, binary or base64url text) and, for mc_blake2b,
 *   [hash hash_len][key key_len][msg msg_len] at `frame`.
 *
 * Every function first checks that the whole frame lies inside linear
 * memory, with unsigned arithmetic, and returns MC_EBOUNDS otherwise.
 */
#include "monocypher.c"

#define EXPORT(name) __attribute__((export_name(name), visibility("default")))

#define MC_OK       0
#define MC_EAUTH   -1   /* MAC did not verify */
#define MC_EBOUNDS -2   /* frame outside linear memory */
#define MC_EARG    -3   /* bad size argument */
#define MC_EFORMAT -4   /* stored text is not canonical base64url, or another header */

#define KEY_SIZE   32
#define NONCE_SIZE 24
#define MAC_SIZE   16

extern unsigned char __heap_base[];

/* 64-bit: a full 4 GiB memory would wrap a 32-bit product to 0. */
static uint64_t memory_bytes(void)
{
    return (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
}

/* True when [frame, frame + a + b + c) lies inside linear memory. */
static int in_bounds(uint32_t frame, uint32_t a, uint32_t b, uint32_t c)
{
    uint64_t end = (uint64_t)frame + a + b + c;
    return frame >= (uint32_t)(uintptr_t)__heap_base && end <= memory_bytes();
}

/* First address the host may use for a frame. */
EXPORT("mc_heap_base") uint32_t mc_heap_base(void)
{
    return (uint32_t)(uintptr_t)__heap_base;
}

EXPORT("mc_wipe") int32_t mc_wipe(uint32_t frame, uint32_t len)
{
    if (!in_bounds(frame, len, 0, 0)) {
        return MC_EBOUNDS;
    }
    crypto_wipe((uint8_t *)(uintptr_t)frame, len);
    return MC_OK;
}

/*
 * XChaCha20-Poly1305 as Monocypher's crypto_aead_lock/unlock compute it
 * (same bytes: tests/guest/test_guest_differential.py compares with
 * libsodium and pycryptodome), except that the ChaCha20 keystream of the
 * text is produced four blocks at a time with 128-bit SIMD.  Monocypher's
 * scalar ChaCha20 compiled to wasm is slower than the same C compiled
 * natively (1 MiB: about 1.75 ms against 1.6 ms), so the guest could not
 * match native Monocypher's throughput (bench/README.md, P2); the four-way
 * form takes about 0.8 ms.  Everything else is Monocypher's: HChaCha20,
 * the one-time Poly1305 key, Poly1305 itself, the tail of fewer than four
 * blocks and the constant-time MAC comparison.
 *
 * Only chacha20_x4 is compiled with the simd128 target feature; the other
 * functions stay scalar (smaller code: the module is compiled by wasmtime
 * in every process that has no cached machine code, bench/README.md, P4).
 */
typedef u32 u32x4 __attribute__((vector_size(16)));
/* Unaligned 16-byte loads and stores of the text. */
typedef u32 u32x4_u __attribute__((vector_size(16), aligned(1)));

#define ROTL_X4(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QUARTERROUND_X4(a, b, c, d)                  \
    a += b;  d = ROTL_X4(d ^ a, 16);                 \
    c += d;  b = ROTL_X4(b ^ c, 12);                 \
    a += b;  d = ROTL_X4(d ^ a,  8);                 \
    c += d;  b = ROTL_X4(b ^ c,  7)

/*
 * Words 4q..4q+3 of the four blocks of a group are lanes 0..3 of a, b, c, d:
 * transposed to 16 bytes of each block, XORed into out at 16q of it.
 */
#define XOR_WORDS_X4(q, a_, b_, c_, d_) do {                            \
        u32x4 a = (a_), b = (b_), c = (c_), d = (d_);                  \
        u32x4 ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);       \
        u32x4 cd_lo = __builtin_shufflevector(c, d, 0, 4, 1, 5);       \
        u32x4 ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);       \
        u32x4 cd_hi = __builtin_shufflevector(c, d, 2, 6, 3, 7);       \
        XOR16(out + 16 * (q), in + 16 * (q),                           \
              __builtin_shufflevector(ab_lo, cd_lo, 0, 1, 4, 5));      \
        XOR16(out + 64 + 16 * (q), in + 64 + 16 * (q),                 \
              __builtin_shufflevector(ab_lo, cd_lo, 2, 3, 6, 7));      \
        XOR16(out + 128 + 16 * (q), in + 128 + 16 * (q),               \
              __builtin_shufflevector(ab_hi, cd_hi, 0, 1, 4, 5));      \
        XOR16(out + 192 + 16 * (q), in + 192 + 16 * (q),               \
              __builtin_shufflevector(ab_hi, cd_hi, 2, 3, 6, 7));      \
    } while (0)
#define XOR16(o, i, v) (*(u32x4_u *)(o) = *(const u32x4_u *)(i) ^ (v))

/*
 * XORs the keystream of blocks ctr, ctr + 1, ... into `groups` groups of
 * four 64-byte blocks (out may equal in), and returns the next counter.
 * Word i of the four blocks of a group is lane 0..3 of xi; the blocks are
 * transposed back before the XOR.  The state and the keystream live in wasm
 * locals (engine registers and stack), never in linear memory: no array is
 * indexed at run time here (see XOR_WORDS_X4's caller).
 */
__attribute__((target("simd128"), noinline))
static u64 chacha20_x4(u8 *out, const u8 *in, size_t groups,
                       const u8 key[32], const u8 nonce[8], u64 ctr)
{
    const u32x4 c0 = {0x61707865, 0x61707865, 0x61707865, 0x61707865};
    const u32x4 c1 = {0x3320646e, 0x3320646e, 0x3320646e, 0x3320646e};
    const u32x4 c2 = {0x79622d32, 0x79622d32, 0x79622d32, 0x79622d32};
    const u32x4 c3 = {0x6b206574, 0x6b206574, 0x6b206574, 0x6b206574};
    u32x4 k[8];
    FOR (i, 0, 8) {
        u32 w = load32_le(key + 4 * i);
        k[i] = (u32x4){w, w, w, w};
    }
    u32 n0 = load32_le(nonce), n1 = load32_le(nonce + 4);
    const u32x4 v14 = {n0, n0, n0, n0}, v15 = {n1, n1, n1, n1};
    FOR (g, 0, groups) {
        /* 64-bit block counters: the carry into word 13 is per lane. */
        u64 b0 = ctr, b1 = ctr + 1, b2 = ctr + 2, b3 = ctr + 3;
        const u32x4 v12 = {(u32)b0, (u32)b1, (u32)b2, (u32)b3};
        const u32x4 v13 = {(u32)(b0 >> 32), (u32)(b1 >> 32), (u32)(b2 >> 32), (u32)(b3 >> 32)};
        u32x4 x0 = c0, x1 = c1, x2 = c2, x3 = c3;
        u32x4 x4 = k[0], x5 = k[1], x6 = k[2], x7 = k[3];
        u32x4 x8 = k[4], x9 = k[5], x10 = k[6], x11 = k[7];
        u32x4 x12 = v12, x13 = v13, x14 = v14, x15 = v15;
#pragma clang loop unroll(disable)
        for (int r = 0; r < 10; r++) { /* 20 rounds, 2 per loop */
            QUARTERROUND_X4(x0, x4, x8 , x12);
            QUARTERROUND_X4(x1, x5, x9 , x13);
            QUARTERROUND_X4(x2, x6, x10, x14);
            QUARTERROUND_X4(x3, x7, x11, x15);
            QUARTERROUND_X4(x0, x5, x10, x15);
            QUARTERROUND_X4(x1, x6, x11, x12);
            QUARTERROUND_X4(x2, x7, x8 , x13);
            QUARTERROUND_X4(x3, x4, x9 , x14);
        }
        /* Named values, not an array: an array indexed in a loop lives on
         * the shadow stack in linear memory, and would leave the last
         * group's keystream there (with the ciphertext, the plaintext;
         * tests/guest/test_guest_wipe.py looks for it). */
        XOR_WORDS_X4(0, x0 + c0, x1 + c1, x2 + c2, x3 + c3);
        XOR_WORDS_X4(1, x4 + k[0], x5 + k[1], x6 + k[2], x7 + k[3]);
        XOR_WORDS_X4(2, x8 + k[4], x9 + k[5], x10 + k[6], x11 + k[7]);
        XOR_WORDS_X4(3, x12 + v12, x13 + v13, x14 + v14, x15 + v15);
        out += 256;
        in += 256;
        ctr += 4;
    }
    return ctr;
}

/* crypto_chacha20_djb(out, in, size, key, nonce, ctr) with in != NULL. */
static void chacha20_xor(u8 *out, const u8 *in, size_t size,
                         const u8 key[32], const u8 nonce[8], u64 ctr)
{
    size_t groups = size >> 8;
    if (groups > 0) {
        ctr = chacha20_x4(out, in, groups, key, nonce, ctr);
        out += groups << 8;
        in += groups << 8;
        size &= 255;
    }
    if (size > 0) {
        crypto_chacha20_djb(out, in, size, key, nonce, ctr);
    }
}

/*
 * crypto_aead_lock (seal) or crypto_aead_unlock (open): init_x, then
 * crypto_aead_write without the rekeying that only its incremental
 * interface uses, or crypto_aead_read.  One function for both, so that the
 * module holds HChaCha20 and the key schedule once (its compile time,
 * bench/README.md P4).  Open writes nothing unless the MAC verifies, and
 * returns non-zero then.
 */
__attribute__((noinline))
static int aead(int seal, u8 *text, u8 mac[16], const u8 key[32], const u8 nonce[24],
                const u8 *ad, size_t ad_size, size_t text_size)
{
    crypto_aead_ctx ctx;
    u8 auth_key[64];
    u8 real_mac[16];
    int mismatch = 0;
    crypto_aead_init_x(&ctx, key, nonce);
    crypto_chacha20_djb(auth_key, 0, 64, ctx.key, ctx.nonce, ctx.counter);
    if (seal) {
        chacha20_xor(text, text, text_size, ctx.key, ctx.nonce, ctx.counter + 1);
        lock_auth(mac, auth_key, ad, ad_size, text, text_size);
    } else {
        lock_auth(real_mac, auth_key, ad, ad_size, text, text_size);
        mismatch = crypto_verify16(mac, real_mac);
        if (!mismatch) {
            chacha20_xor(text, text, text_size, ctx.key, ctx.nonce, ctx.counter + 1);
        }
    }
    WIPE_BUFFER(auth_key);
    WIPE_BUFFER(real_mac);
    crypto_wipe(&ctx, sizeof(ctx));
    return mismatch;
}

/*
 * Seal and open work on a batch: [count u32][frame 1][frame 2]...  Each
 * frame starts with four little-endian u32 words, then the key:
 *
 *   words   [ad_len A][text_len T][head_len H][prefix_len P]
 *   seal    [words][key 32][ad A][nonce 24][mac 16][text T]
 *   open    [words][key 32][ad A][envelope head H][nonce 24][mac 16][text T]
 *   text forms add, after the text, [text prefix P][base64url chars].
 *
 * The associated data starts with the envelope header (its first H bytes,
 * H <= HEAD_MAX).  Seal writes the header in front of the nonce once the
 * ad is wiped, so that the envelope header || nonce || mac || ciphertext is
 * one contiguous range; open first copies the envelope's own header into
 * the first H bytes of the ad.  The text forms encode (seal) or decode
 * (open) that envelope as unpadded base64url (RFC 4648 section 5) after the
 * P bytes of text prefix that the host placed (seal) or checked (open).
 * Decoding is strict: alphabet only, no padding, zero unused bits, and the
 * decoded header must equal the one the host placed in the ad.
 *
 * Each frame's result code replaces its first word.  The call returns
 * MC_OK once every frame was visited, or MC_EBOUNDS / MC_EARG for the
 * first frame that is not wholly inside memory or has a bad size word
 * (frames before it were processed).
 */
#define WORDS      16
#define HEAD_MAX   16
#define PREFIX_MAX 64

enum op { OP_SEAL, OP_OPEN, OP_SEAL_TEXT, OP_OPEN_TEXT };

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Moves at most HEAD_MAX bytes.  Loops kept rolled: unrolled, the four
 * inlined copies were a fifth of run_batch, and every byte of the module
 * costs compile time in each process without cached machine code
 * (guest/build.py, bench/README.md P4). */
static void move_bytes(uint8_t *dst, const uint8_t *src, uint32_t n)
{
    if (dst < src) {
#pragma clang loop unroll(disable)
        for (uint32_t i = 0; i < n; i++) dst[i] = src[i];
    } else {
#pragma clang loop unroll(disable)
        for (uint32_t i = n; i > 0; i--) dst[i - 1] = src[i - 1];
    }
}

/* Characters of the unpadded base64url form of n bytes. */
static uint64_t b64_chars(uint64_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_encode(uint8_t *out, const uint8_t *in, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
        *out++ = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
    }
}

/*
 * Decoding table: 1 + the value of each base64url character, 0 for every
 * other byte.  A table rather than range tests: stored text is random, and
 * the branches of range tests mispredict on nearly every character (the
 * decode ran at half speed on distinct values).  Built on first use; it
 * holds nothing secret.
 */
static uint8_t B64_DECODE[256];

static void b64_table(void)
{
    if (B64_DECODE['A'] == 0) {
#pragma clang loop unroll(disable)  /* runs once: size over speed */
        for (uint32_t i = 0; i < 64; i++) {
            B64_DECODE[(uint8_t)B64[i]] = (uint8_t)(i + 1);
        }
    }
}

/* 0..63, or a value with bits above the sixth set (0xFFFFFFFF) for a
 * character outside the base64url alphabet. */
static uint32_t b64_value(uint8_t c)
{
    return (uint32_t)B64_DECODE[c] - 1u;
}

/*
 * Decodes the b64_chars(H + rest) characters at `in`: the first H bytes
 * must equal `head`, the others go to `out`.  Non-zero when the text is
 * not canonical or the header differs.
 */
static int b64_decode(uint8_t *out, const uint8_t *head, uint32_t H, uint32_t rest,
                      const uint8_t *in)
{
    uint32_t n = H + rest, bad = 0, j = 0;
    uint8_t bytes[3];
    b64_table();
    while (j < n) {
        uint32_t take = n - j < 3 ? n - j : 3;  /* bytes from this group */
        uint32_t v = 0;
        for (uint32_t k = 0; k < take + 1; k++) {
            uint32_t d = b64_value(*in++);
            bad |= d >> 6;
            v |= (d & 63) << (18 - 6 * k);
        }
        bytes[0] = (uint8_t)(v >> 16);
        bytes[1] = (uint8_t)(v >> 8);
        bytes[2] = (uint8_t)v;
        /* unused low bits of the last character must be zero */
        if (take == 1) bad |= (v & 0xFFFF) != 0;
        if (take == 2) bad |= (v & 0xFF) != 0;
        for (uint32_t k = 0; k < take; k++, j++) {
            if (j < H) {
                bad |= head[j] != bytes[k];
            } else {
                out[j - H] = bytes[k];
            }
        }
    }
    return bad != 0;
}

static uint64_t frame_size(enum op op, uint32_t A, uint32_t T, uint32_t H, uint32_t P)
{
    uint64_t size = (uint64_t)WORDS + KEY_SIZE + A + NONCE_SIZE + MAC_SIZE + T;
    if (op == OP_OPEN) {
        size += H;
    }
    if (op == OP_SEAL_TEXT || op == OP_OPEN_TEXT) {
        size += P + b64_chars((uint64_t)H + NONCE_SIZE + MAC_SIZE + T);
    }
    return size;
}

/* One frame, already bounds-checked. */
static int32_t run_frame(enum op op, uint8_t *f, uint32_t A, uint32_t T, uint32_t H, uint32_t P)
{
    uint8_t *key = f + WORDS;
    uint8_t *ad = key + KEY_SIZE;
    uint8_t *nonce = ad + A + (op == OP_OPEN ? H : 0);
    uint8_t *mac = nonce + NONCE_SIZE;
    uint8_t *text = mac + MAC_SIZE;
    uint8_t *chars = text + T + P;
    int32_t rc = MC_OK;
    if (op == OP_SEAL || op == OP_SEAL_TEXT) {
        uint8_t head[HEAD_MAX];
        aead(1, text, mac, key, nonce, ad, A, T);
        move_bytes(head, ad, H);
        crypto_wipe(key, KEY_SIZE);
        crypto_wipe(ad, A);
        move_bytes(nonce - H, head, H);
        if (op == OP_SEAL_TEXT) {
            b64_encode(chars, nonce - H, H + NONCE_SIZE + MAC_SIZE + T);
        }
        return MC_OK;
    }
    if (op == OP_OPEN) {
        move_bytes(ad, ad + A, H);
    } else if (b64_decode(nonce, ad, H, NONCE_SIZE + MAC_SIZE + T, chars)) {
        rc = MC_EFORMAT;
    }
    if (rc == MC_OK && aead(0, text, mac, key, nonce, ad, A, T) != 0) {
        rc = MC_EAUTH;
    }
    crypto_wipe(key, KEY_SIZE);
    crypto_wipe(ad, A);
    return rc;
}

static int32_t run_batch(enum op op, uint32_t batch)
{
    uint64_t at = batch, size = memory_bytes();
    if (batch < (uint32_t)(uintptr_t)__heap_base || at + 4 > size) {
        return MC_EBOUNDS;
    }
    uint32_t count = load32((uint8_t *)(uintptr_t)batch);
    at += 4;
    for (uint32_t i = 0; i < count; i++) {
        if (at + WORDS > size) {
            return MC_EBOUNDS;
        }
        uint8_t *f = (uint8_t *)(uintptr_t)at;
        uint32_t A = load32(f), T = load32(f + 4), H = load32(f + 8), P = load32(f + 12);
        if (H > HEAD_MAX || H > A || P > PREFIX_MAX) {
            return MC_EARG;
        }
        uint64_t end = at + frame_size(op, A, T, H, P);
        if (end > size) {
            return MC_EBOUNDS;
        }
        store32(f, (uint32_t)run_frame(op, f, A, T, H, P));
        at = end;
    }
    return MC_OK;
}

/* Encrypts each text in place and writes its MAC; wipes keys and ads. */
EXPORT("mc_seal") int32_t mc_seal(uint32_t batch)
{
    return run_batch(OP_SEAL, batch);
}

/*
 * Verifies each MAC and decrypts in place; wipes keys and ads.  On a bad
 * MAC Monocypher writes nothing, and the ciphertext left behind is public.
 */
EXPORT("mc_open") int32_t mc_open(uint32_t batch)
{
    return run_batch(OP_OPEN, batch);
}

/* mc_seal, then the envelope as base64url after the text prefix. */
EXPORT("mc_seal_text") int32_t mc_seal_text(uint32_t batch)
{
    return run_batch(OP_SEAL_TEXT, batch);
}

/* The base64url envelope decoded (strictly) in front of the text, then mc_open. */
EXPORT("mc_open_text") int32_t mc_open_text(uint32_t batch)
{
    return run_batch(OP_OPEN_TEXT, batch);
}

/* Keyed BLAKE2b (RFC 7693); used for key ids and subkeys.  Wipes the key. */
EXPORT("mc_blake2b") int32_t mc_blake2b(uint32_t frame, uint32_t hash_len,
                                        uint32_t key_len, uint32_t msg_len)
{
    if (hash_len < 1 || hash_len > 64 || key_len > 64) {
        return MC_EARG;
    }
    if (!in_bounds(frame, hash_len, key_len, msg_len)) {
        return MC_EBOUNDS;
    }
    uint8_t *hash = (uint8_t *)(uintptr_t)frame;
    uint8_t *key  = hash + hash_len;
    uint8_t *msg  = key + key_len;
    crypto_blake2b_keyed(hash, hash_len, key, key_len, msg, msg_len);
    crypto_wipe(key, key_len);
    return MC_OK;
}

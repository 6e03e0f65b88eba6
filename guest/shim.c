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
 * Frame layouts (offsets from `frame`):
 *
 *   mc_seal / mc_open   [key 32][ad ad_len][nonce 24][mac 16][text text_len]
 *
 * nonce, mac and text are adjacent so that the host reads a sealed value
 * (nonce || mac || ciphertext, the tail of the envelope) with one copy.
 *   mc_blake2b          [hash hash_len][key key_len][msg msg_len]
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

#define KEY_SIZE   32
#define NONCE_SIZE 24
#define MAC_SIZE   16
#define AEAD_HEAD  (KEY_SIZE + NONCE_SIZE + MAC_SIZE)

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

/* Pointers into a seal/open frame (layout at the top of this file). */
struct aead_frame {
    uint8_t *key, *ad, *nonce, *mac, *text;
};

static struct aead_frame aead_frame_at(uint32_t frame, uint32_t ad_len)
{
    struct aead_frame f;
    f.key   = (uint8_t *)(uintptr_t)frame;
    f.ad    = f.key + KEY_SIZE;
    f.nonce = f.ad + ad_len;
    f.mac   = f.nonce + NONCE_SIZE;
    f.text  = f.mac + MAC_SIZE;
    return f;
}

/* Encrypts text in place and writes the MAC; wipes key and ad. */
EXPORT("mc_seal") int32_t mc_seal(uint32_t frame, uint32_t ad_len, uint32_t text_len)
{
    if (!in_bounds(frame, AEAD_HEAD, ad_len, text_len)) {
        return MC_EBOUNDS;
    }
    struct aead_frame f = aead_frame_at(frame, ad_len);
    crypto_aead_lock(f.text, f.mac, f.key, f.nonce, f.ad, ad_len, f.text, text_len);
    crypto_wipe(f.key, KEY_SIZE);
    crypto_wipe(f.ad, ad_len);
    return MC_OK;
}

/*
 * Verifies the MAC and decrypts text in place; wipes key and ad.  On a bad
 * MAC Monocypher writes nothing, and the ciphertext left behind is public.
 */
EXPORT("mc_open") int32_t mc_open(uint32_t frame, uint32_t ad_len, uint32_t text_len)
{
    if (!in_bounds(frame, AEAD_HEAD, ad_len, text_len)) {
        return MC_EBOUNDS;
    }
    struct aead_frame f = aead_frame_at(frame, ad_len);
    int rc = crypto_aead_unlock(f.text, f.mac, f.key, f.nonce, f.ad, ad_len, f.text, text_len);
    crypto_wipe(f.key, KEY_SIZE);
    crypto_wipe(f.ad, ad_len);
    return rc == 0 ? MC_OK : MC_EAUTH;
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

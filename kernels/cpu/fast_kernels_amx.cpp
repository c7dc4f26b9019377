// The AMX variant of the fast kernels (fast_matmul.hpp), for Intel Xeons with AMX-INT8.
//
// The fast arithmetic's block sums are exact integers, so any unit that computes them exactly
// gives the reference's bits. AMX has no 16-bit integer product, so each 16-bit activation
// q = 256 hi + lo is fed as two byte planes (hi signed, lo unsigned; quantize_row writes them):
//     isum = 256 * (hi . w) + (lo . w)       tdpbssd (s8 x s8) and tdpbusd (u8 x s8), exact int32
// Per 16-row panel and 32-column block, the weights become one B tile (8 rows of 16 columns x 4
// bytes) unpacked from the same packed record the AVX-512 kernel reads (chunk c of a q4 record
// is B row c; two q8 pairs make a row); per 16 tokens, the two A tiles are 16 x 32 bytes of the
// hi and lo planes. The two C tiles go to L1 and the AVX-512 epilogue of the other variants
// (mul, fma, fma, lane = output row) turns them into the float sums, token by token -- the same
// operations in the same order, hence the same bits. Steps of fewer than 16 tokens (decode)
// run the AVX-512 kernel instead: same bits, and AMX would idle most of its tile rows.
//
// Safety: the tile-data permission is requested from Linux (arch_prctl) once; a refusal, or a
// start-up self-check whose bits differ from the reference (fast_matmul.cpp), leaves AMX
// unused. The tile config is loaded with an asm that tells GCC 12 the whole 64-byte struct is
// read (its _tile_loadconfig says 8 bytes, and -O2 then drops the stores: SIGSEGV; see
// shared/notes/amx-bf16-primer.md 1b). Each thread loads its own config (per-thread state).
//
// Written on AMD Zen 4 machines without AMX: compiled here, run only where AMX exists; the
// self-check is what stands between an untested kernel and wrong logits.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/fast_kernel_variants.hpp"

namespace troupe::kernels {
namespace {

struct alignas(64) tile_config {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(tile_config) == 64);

void load_config(const tile_config* c) { asm volatile("ldtilecfg %0" ::"m"(*c)); }

// Tiles: 0 C_hi, 1 C_lo (tokens x 16 int32), 2 A_hi, 3 A_lo (tokens x 32 bytes), 4 B (8 x 64).
void configure(int tokens) {
  thread_local int configured_tokens = 0;
  if (configured_tokens == tokens) return;
  tile_config c;
  std::memset(&c, 0, sizeof c);
  c.palette_id = 1;
  for (int i : {0, 1}) {
    c.rows[i] = static_cast<uint8_t>(tokens);
    c.colsb[i] = 64;
  }
  for (int i : {2, 3}) {
    c.rows[i] = static_cast<uint8_t>(tokens);
    c.colsb[i] = 32;
  }
  c.rows[4] = 8;
  c.colsb[4] = 64;
  load_config(&c);
  configured_tokens = tokens;
}

void quantize_row(const float* x, uint8_t* y, int64_t k) {
  avx512_fast_kernels().quantize_row(x, y, k);
  const auto* q = reinterpret_cast<const int16_t*>(y);
  uint8_t* hi = y + act16_split_offset(k);
  uint8_t* lo = hi + k;
  for (int64_t i = 0; i < k; i += 32) {
    const __m512i v = _mm512_loadu_si512(q + i);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + i),
                        _mm512_cvtepi16_epi8(_mm512_srai_epi16(v, 8)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + i),
                        _mm512_cvtepi16_epi8(_mm512_and_si512(v, _mm512_set1_epi16(0xFF))));
  }
}

// One packed record (16 rows x 32 columns) -> the B tile: row r, column n holds the 4 bytes
// q[n][4r .. 4r+3].
void unpack_b(const uint8_t* rec, bool q4, uint8_t* b) {
  for (int r = 0; r < 8; ++r) {
    __m512i row;
    if (q4) {
      // u16 lane n of chunk r = byte(2n) | byte(2n+1) << 8: low nibbles are columns 4r, 4r+1,
      // high nibbles 4r+2, 4r+3.
      const __m512i v = _mm512_cvtepu16_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 32 * r)));
      const __m512i m = _mm512_set1_epi32(0x0F0F);
      row = _mm512_or_si512(_mm512_and_si512(v, m), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(v, 4), m), 16));
    } else {
      const __m512i a = _mm512_cvtepu16_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 64 * r)));
      const __m512i c = _mm512_cvtepu16_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 64 * r + 32)));
      row = _mm512_or_si512(a, _mm512_slli_epi32(c, 16));
    }
    _mm512_store_si512(b + 64 * r, row);
  }
}

template <bool Q4>
void panel_amx(const uint8_t* panel, int64_t nb, uint64_t bb, const uint8_t* a, uint64_t arb,
               int64_t k, int tokens, float* y, int64_t ldy, int rows) {
  alignas(64) uint8_t btile[512];
  alignas(64) int32_t c_hi[16 * 16];
  alignas(64) int32_t c_lo[16 * 16];
  const uint64_t split = act16_split_offset(k);
  __m512 facc[16];
  for (int t = 0; t < 16; ++t) facc[t] = _mm512_setzero_ps();
  configure(tokens);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* rec = panel + bb * static_cast<uint64_t>(b);
    unpack_b(rec, Q4, btile);
    _tile_zero(0);
    _tile_zero(1);
    _tile_loadd(2, a + split + 32 * b, static_cast<long>(arb));
    _tile_loadd(3, a + split + static_cast<uint64_t>(k) + 32 * b, static_cast<long>(arb));
    _tile_loadd(4, btile, 64);
    _tile_dpbssd(0, 2, 4);
    _tile_dpbusd(1, 3, 4);
    _tile_stored(0, c_hi, 64);
    _tile_stored(1, c_lo, 64);
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + (Q4 ? 256 : 512))));
    const __m512 mw = Q4 ? _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 288)))
                         : _mm512_setzero_ps();
    for (int t = 0; t < tokens; ++t) {
      const auto* xd = reinterpret_cast<const float*>(a + static_cast<uint64_t>(t) * arb + 2 * k);
      const __m512i isum = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(c_hi + 16 * t), 8),
                                            _mm512_load_si512(c_lo + 16 * t));
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[b]));
      facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), s, facc[t]);
      if constexpr (Q4) facc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(xd[nb + b]), facc[t]);
    }
  }
  const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1u);
  for (int t = 0; t < tokens; ++t) _mm512_mask_storeu_ps(y + t * ldy, mask, facc[t]);
}

void gemm(const packed_weight& w, int64_t p0, int64_t p1, const uint8_t* a, uint64_t arb,
          int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t full = n_tokens / 16 * 16;
  if (full > 0) {
    const int64_t nb = w.n_blocks(), k = w.k();
    const uint64_t bb = w.block_bytes();
    for (int64_t p = p0; p < p1; ++p) {
      const int rows = static_cast<int>(std::min<int64_t>(k_panel_rows, w.n() - p * k_panel_rows));
      for (int64_t t0 = 0; t0 < full; t0 += 16) {
        if (w.kind() == packed_kind::q4)
          panel_amx<true>(w.panel(p), nb, bb, a + static_cast<uint64_t>(t0) * arb, arb, k, 16,
                          y + t0 * ldy + p * k_panel_rows, ldy, rows);
        else
          panel_amx<false>(w.panel(p), nb, bb, a + static_cast<uint64_t>(t0) * arb, arb, k, 16,
                           y + t0 * ldy + p * k_panel_rows, ldy, rows);
      }
    }
  }
  // The tail (and whole decode steps): the AVX-512 kernel, whose bits are the same.
  if (full < n_tokens)
    avx512_fast_kernels().gemm(w, p0, p1, a + static_cast<uint64_t>(full) * arb, arb,
                               n_tokens - full, y + full * ldy, ldy);
}

const fast_kernel_table k_table{"amx", quantize_row, gemm};

}  // namespace

bool request_amx_permission() {
  constexpr long arch_get_xcomp_perm = 0x1022, arch_req_xcomp_perm = 0x1023;
  constexpr int xfeature_xtiledata = 18;
  if (syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) != 0) return false;
  unsigned long mask = 0;
  return syscall(SYS_arch_prctl, arch_get_xcomp_perm, &mask) == 0 && ((mask >> 18) & 1) != 0;
}

const fast_kernel_table& amx_fast_kernels() { return k_table; }

void amx_unpack_b_tile(const uint8_t* rec, packed_kind kind, uint8_t* b) {
  unpack_b(rec, kind == packed_kind::q4, b);
}

}  // namespace troupe::kernels

// CUDA embedding gather / scatter-add gradient vs the CPU op (ops/embedding.h), and the input-embedding row
// scatters (visual features into <|image_pad|> rows, latent states into <|lvr|> rows) vs the trainer's loops.
// Gathers and scatters move values unchanged, so they must match exactly; the embedding gradient adds each
// id's rows in token order, as the CPU op does, so it must match bit for bit too (and the fp64 rule).
#include <string>

#include "cuda_tests/device_buffer.h"
#include "ops/embedding.h"
#include "tests/harness.h"

namespace vr::test {
namespace {

std::vector<int32_t> random_ids(Rng& rng, int64_t T, int64_t V, int32_t hot, double hot_share) {
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = rng.uniform(0, 1) < hot_share ? hot : int32_t(rng.next() % uint64_t(V));
  return ids;
}

template <class S>
void embedding_case(int64_t T, int64_t V, int64_t C, double hot_share, uint64_t seed) {
  Rng rng(seed);
  const auto ids = random_ids(rng, T, V, 3, hot_share);
  const auto table = stored<S>(rng.vec(size_t(V * C))), dout = stored<S>(rng.vec(size_t(T * C)));
  const auto dtable0 = rng.vec(size_t(V * C));
  const std::string tag = std::string("cuda embedding ") + storage_name<S>() + " T=" + std::to_string(T) +
                          " V=" + std::to_string(V) + " C=" + std::to_string(C);

  // CPU op: the table converted from its storage, fp32 out; gradient into an fp32 table.
  std::vector<float> out_cpu(size_t(T * C)), dtable_cpu = dtable0;
  const auto table_s = to_storage<S>(table);
  vr::embedding_forward(out_cpu.data(), ids.data(), T, table_s.data(), sizeof(S) == 2 ? DType::BF16 : DType::F32, V,
                        C);
  vr::embedding_backward(dtable_cpu.data(), dout.data(), ids.data(), T, V, C);
  std::vector<double> dtable64 = to_double(dtable0);
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < C; c++) dtable64[size_t(ids[size_t(t)] * C + c)] += dout[size_t(t * C + c)];

  DeviceBuffer<S> d_table(table_s), d_out(size_t(T * C)), d_dout(to_storage<S>(dout));
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<float> d_dtable(dtable0);
  cuda::embedding_forward(d_out.get(), d_ids.get(), T, d_table.get(), V, C);
  cuda::embedding_backward(d_dtable.get(), d_dout.get(), d_ids.get(), T, V, C);
  const auto out = to_float(d_out.download()), dtable = d_dtable.download();
  check_true(tag + " forward equals the CPU gather", out == out_cpu);
  check_rule(tag + " backward", dtable.data(), dtable_cpu.data(), dtable64.data(), dtable.size(), 1e-6);
  check_true(tag + " backward is bit-identical to the CPU op (same additions, same order)", dtable == dtable_cpu);
}

void index_and_rows_case() {
  // index_check: first position outside [lo, hi), or -1
  std::vector<int32_t> idx(3000);
  for (size_t i = 0; i < idx.size(); i++) idx[i] = int32_t(i % 97);
  DeviceBuffer<int32_t> d_first(1);
  {
    DeviceBuffer<int32_t> d_idx(idx);
    cuda::index_check(d_first.get(), d_idx.get(), int64_t(idx.size()), 0, 97);
    const int32_t ok = d_first.download()[0];
    idx[2500] = 97;
    idx[1700] = -1;
    d_idx.upload(idx);
    cuda::index_check(d_first.get(), d_idx.get(), int64_t(idx.size()), 0, 97);
    check_true("cuda index_check: -1 when all inside, else the first bad position (1700)",
               ok == -1 && d_first.download()[0] == 1700);
  }
  // token_rows: ordered positions of a token, beyond one block of ids; max_rows caps the writes, not the count
  Rng rng(5);
  const int32_t pad = 7;
  auto ids = random_ids(rng, 2500, 40, pad, 0.3);
  std::vector<int32_t> want;
  for (size_t i = 0; i < ids.size(); i++)
    if (ids[i] == pad) want.push_back(int32_t(i));
  DeviceBuffer<int32_t> d_ids(ids), d_rows(want.size()), d_count(1), d_rows_short(10);
  cuda::token_rows(d_rows.get(), d_count.get(), d_ids.get(), int64_t(ids.size()), pad, int64_t(want.size()));
  const auto rows = d_rows.download();
  const int32_t count = d_count.download()[0];
  cuda::token_rows(d_rows_short.get(), d_count.get(), d_ids.get(), int64_t(ids.size()), pad, 10);
  const auto rows_short = d_rows_short.download();
  check_true("cuda token_rows: the " + std::to_string(want.size()) + " image-pad positions in order",
             rows == want && count == int32_t(want.size()));
  check_true("cuda token_rows: max_rows=10 writes the first 10 and still counts all",
             std::vector<int32_t>(want.begin(), want.begin() + 10) == rows_short &&
                 d_count.download()[0] == int32_t(want.size()));
}

template <class S>
void scatter_case(int64_t T, int64_t D, uint64_t seed) {
  Rng rng(seed);
  // distinct rows: every third position, then a few from the end (as <|lvr|> slots after the image pads)
  std::vector<int32_t> rows;
  for (int64_t i = 1; i < T; i += 3) rows.push_back(int32_t(i));
  const int64_t n = int64_t(rows.size());
  const auto x0 = stored<S>(rng.vec(size_t(T * D))), src = stored<S>(rng.vec(size_t(n * D)));
  const auto dx0 = stored<S>(rng.vec(size_t(T * D))), dsrc0 = stored<S>(rng.vec(size_t(n * D)));
  const std::string tag = std::string("cuda scatter_rows ") + storage_name<S>() + " T=" + std::to_string(T) +
                          " n=" + std::to_string(n) + " D=" + std::to_string(D);
  // the trainer's loops: memcpy into the rows; backward gathers the rows' gradient and zeroes them
  std::vector<float> x_ref = x0, dx_ref = dx0, dsrc_ref = dsrc0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < D; c++) {
      const size_t r = size_t(rows[size_t(i)] * D + c);
      x_ref[r] = src[size_t(i * D + c)];
      dsrc_ref[size_t(i * D + c)] = stored<S>({dsrc_ref[size_t(i * D + c)] + dx_ref[r]})[0];
      dx_ref[r] = 0.f;
    }
  DeviceBuffer<S> d_x(to_storage<S>(x0)), d_src(to_storage<S>(src)), d_dx(to_storage<S>(dx0));
  DeviceBuffer<S> d_dsrc(to_storage<S>(dsrc0));
  DeviceBuffer<int32_t> d_rows(rows);
  cuda::scatter_rows(d_x.get(), d_src.get(), d_rows.get(), n, D, T);
  cuda::scatter_rows_backward(d_dsrc.get(), d_dx.get(), d_rows.get(), n, D, T);
  check_true(tag + " forward: rows replaced, others untouched", to_float(d_x.download()) == x_ref);
  check_true(tag + " backward: row gradients gathered (+=), rows zeroed",
             to_float(d_dsrc.download()) == dsrc_ref && to_float(d_dx.download()) == dx_ref);
}

}  // namespace

VR_TEST(cuda_embedding) {
  embedding_case<float>(40, 50, 70, 0.2, 41);
  embedding_case<float>(400, 30, 33, 0.75, 42);  // one id ~300 times: its rows span several compaction chunks
  embedding_case<bf16>(64, 20, 96, 0.3, 43);
  // an id outside [0, V) gives a zero row (the caller runs index_check first; the CPU op throws)
  const std::vector<int32_t> ids = {0, 5, 2};
  const std::vector<float> table = {1, 2, 3, 4, 5, 6};  // V=3, C=2
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<float> d_table(table), d_out(6);
  cuda::embedding_forward(d_out.get(), d_ids.get(), 3, d_table.get(), 3, 2);
  check_true("cuda embedding_forward: out-of-range id -> zero row",
             d_out.download() == std::vector<float>({1, 2, 0, 0, 5, 6}));
}

VR_TEST(cuda_token_rows_scatter) {
  index_and_rows_case();
  scatter_case<float>(50, 40, 51);
  scatter_case<bf16>(31, 300, 52);
}

}  // namespace vr::test

// Compile-time benchmark: the state of compile_time_ckpt.cpp written by hand with plain cereal.
// The ten structs and their save/load pairs are alike on purpose, as in compile_time_ckpt.cpp.
#include <Eigen/Core>
#include <cereal/archives/binary.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <fstream>

namespace model {
template <class Archive, class M>
void load_matrix(Archive& ar, M& m) {
    std::int64_t rows = 0, cols = 0;
    ar(rows, cols);
    m.resize(rows, cols);
    ar(cereal::binary_data(m.data(), static_cast<std::size_t>(m.size()) * sizeof(typename M::Scalar)));
}
template <class Archive, class M>
void save_matrix(Archive& ar, const M& m) {
    ar(static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols()));
    ar(cereal::binary_data(m.data(), static_cast<std::size_t>(m.size()) * sizeof(typename M::Scalar)));
}
struct embedding {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const embedding& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, embedding& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct attention_q {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const attention_q& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, attention_q& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct attention_k {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const attention_k& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, attention_k& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct attention_v {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const attention_v& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, attention_v& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct attention_o {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const attention_o& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, attention_o& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct norm1 {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const norm1& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, norm1& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct ffn_in {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const ffn_in& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, ffn_in& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct ffn_out {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const ffn_out& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, ffn_out& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct norm2 {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const norm2& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, norm2& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct head {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
template <class Archive>
void save(Archive& ar, const head& s) {
    save_matrix(ar, s.kernel);
    save_matrix(ar, s.bias);
    ar(static_cast<std::uint64_t>(s.moments.size()));
    for (const auto& m : s.moments) save_matrix(ar, m);
    ar(s.updates);
}
template <class Archive>
void load(Archive& ar, head& s) {
    load_matrix(ar, s.kernel);
    load_matrix(ar, s.bias);
    std::uint64_t n = 0;
    ar(n);
    s.moments.resize(n);
    for (auto& m : s.moments) load_matrix(ar, m);
    ar(s.updates);
}
struct network {
    embedding embedding_;
    attention_q attention_q_;
    attention_k attention_k_;
    attention_v attention_v_;
    attention_o attention_o_;
    norm1 norm1_;
    ffn_in ffn_in_;
    ffn_out ffn_out_;
    norm2 norm2_;
    head head_;
};
template <class Archive>
void save(Archive& ar, const network& net) {
    save(ar, net.embedding_);
    save(ar, net.attention_q_);
    save(ar, net.attention_k_);
    save(ar, net.attention_v_);
    save(ar, net.attention_o_);
    save(ar, net.norm1_);
    save(ar, net.ffn_in_);
    save(ar, net.ffn_out_);
    save(ar, net.norm2_);
    save(ar, net.head_);
}
template <class Archive>
void load(Archive& ar, network& net) {
    load(ar, net.embedding_);
    load(ar, net.attention_q_);
    load(ar, net.attention_k_);
    load(ar, net.attention_v_);
    load(ar, net.attention_o_);
    load(ar, net.norm1_);
    load(ar, net.ffn_in_);
    load(ar, net.ffn_out_);
    load(ar, net.norm2_);
    load(ar, net.head_);
}
}  // namespace model

void save_network(const model::network& net) {
    std::ofstream os("network.bin", std::ios::binary);
    cereal::BinaryOutputArchive ar(os);
    model::save(ar, net);
    os.close();
    model::network copy;
    std::ifstream is("network.bin", std::ios::binary);
    cereal::BinaryInputArchive in(is);
    model::load(in, copy);
}

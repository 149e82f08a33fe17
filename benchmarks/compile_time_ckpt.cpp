// Compile-time benchmark: a 10-struct model tracked through ckpt (see compile_time_cereal.cpp for the
// same state written by hand with cereal). benchmarks/run.sh times the compilation of each.
// The ten structs are alike on purpose: distinct types, so each pays its own instantiation, as the
// layers of a real model do.
#include <ckpt/ckpt.hpp>

namespace model {
struct embedding {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(embedding, kernel, bias, moments, updates)
struct attention_q {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(attention_q, kernel, bias, moments, updates)
struct attention_k {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(attention_k, kernel, bias, moments, updates)
struct attention_v {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(attention_v, kernel, bias, moments, updates)
struct attention_o {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(attention_o, kernel, bias, moments, updates)
struct norm1 {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(norm1, kernel, bias, moments, updates)
struct ffn_in {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(ffn_in, kernel, bias, moments, updates)
struct ffn_out {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(ffn_out, kernel, bias, moments, updates)
struct norm2 {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(norm2, kernel, bias, moments, updates)
struct head {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
    std::vector<Eigen::MatrixXf> moments;
    std::int64_t updates = 0;
};
CKPT_FIELDS(head, kernel, bias, moments, updates)
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
}  // namespace model

void save_network(const model::network& net) {
    model::network copy = net;
    ckpt::checkpoint ck{ckpt::track("model", copy)};
    ck.write("network.ckpt");
    ck.restore("network.ckpt");
}

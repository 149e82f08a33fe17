// Compile-time benchmark: 12 distinct tensor leaf types in one tracked struct, what each leaf type costs.
#include <ckpt/ckpt.hpp>
#include <array>
#include <vector>
struct many {
    Eigen::MatrixXf a;
    Eigen::MatrixXd b;
    Eigen::Matrix<float, -1, -1, Eigen::RowMajor> c;
    Eigen::VectorXd d;
    Eigen::ArrayXXf e;
    Eigen::Matrix4f f;
    Eigen::Matrix<std::int32_t, -1, 1> g;
    std::vector<int> h;
    std::vector<double> i;
    std::array<float, 4> j;
    Eigen::Matrix<std::int64_t, -1, -1> k;
    Eigen::RowVectorXf l;
};
void save_many(many& m) {
    ckpt::checkpoint ck{ckpt::track("m", m)};
    ck.write("m.ckpt");
    ck.restore("m.ckpt");
}

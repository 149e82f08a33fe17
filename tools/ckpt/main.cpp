// The `ckpt` command-line tool: look into checkpoints without writing C++.
//
//   ckpt ls DIR [--json]        checkpoints a manager keeps in DIR
//   ckpt inspect FILE [--json]  metadata and every entry, checksums checked (a directory: its checkpoints)
//   ckpt verify FILE|DIR        every checksum and structure, each file's verdict after its details
//                               (all on stdout, in order); non-zero exit when anything is wrong
//   ckpt diff A B [--atol X] [--rtol X] [--json] [--only P] [--exclude P]
//                               entries added, removed, changed (tensors by value); exit 0 only when equal
//   ckpt export FILE --format npz|safetensors -o OUT [--only P] [--exclude P] [--names paths|dotted]
//   ckpt import SRC -o OUT [--rename FROM=TO]...
//                               safetensors (a file or an HF-sharded model), npz, npy into a ckpt file
//
// Exit status: 0 success, 1 a check found a problem (verify, diff, inspect), 2 bad usage or input.

#include <ckpt/error.hpp>

#include <CLI/CLI.hpp>

#include <iostream>

#include "diff.hpp"
#include "export.hpp"
#include "filter.hpp"
#include "import.hpp"
#include "inspect.hpp"
#include "ls.hpp"
#include "text.hpp"
#include "verify.hpp"

int main(int argc, char** argv) {
    CLI::App app{"ckpt: list, inspect, verify, compare, export and import ckpt checkpoints"};
    app.require_subcommand(1);

    std::string dir, file, a, b, format, out;
    bool json = false, diff_json = false, ls_json = false;
    ckpt::tool::path_filter filter;
    ckpt::tool::diff_options diff_opt;
    auto* ls = app.add_subcommand("ls", "List the checkpoints a checkpoint_manager keeps in a directory");
    ls->add_option("DIR", dir, "checkpoint directory")->required();
    ls->add_flag("--json", ls_json, "machine-readable output (as inspect --json: metrics read back exactly)");
    auto* inspect = app.add_subcommand("inspect", "Show the metadata and every entry of a checkpoint file");
    inspect->add_option("FILE", file, "checkpoint file (a directory of checkpoints: lists them, as ls)")->required();
    inspect->add_flag("--json", json,
                      "machine-readable output; metrics read back exactly (NaN and infinities as the strings \"nan\", "
                      "\"inf\", \"-inf\")");
    auto* verify = app.add_subcommand(
        "verify", "Check every checksum and the structure of a file, or of every checkpoint in a directory");
    verify->add_option("PATH", file, "checkpoint file or directory")->required();
    auto* diff = app.add_subcommand(
        "diff",
        "Compare two checkpoints entry by entry, tensors by value in logical order; exit status 0 only when equal");
    diff->add_option("A", a, "first checkpoint")->required();
    diff->add_option("B", b, "second checkpoint")->required();
    diff->add_option("--atol", diff_opt.atol,
                     "absolute tolerance: elements a, b are equal when |a-b| <= atol + rtol*|b| (default 0)")
        ->check(CLI::NonNegativeNumber);
    diff->add_option("--rtol", diff_opt.rtol, "relative tolerance (default 0)")->check(CLI::NonNegativeNumber);
    diff->add_flag("--json", diff_json,
                   "machine-readable output (NaN and infinities as the strings \"nan\", \"inf\", \"-inf\")");
    diff->add_option("--only", filter.only,
                     "compare only entries under this path prefix (repeatable), e.g. --only model")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    diff->add_option("--exclude", filter.exclude,
                     "leave out entries under this path prefix (repeatable), e.g. --exclude optimizer")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    auto* exp = app.add_subcommand("export", "Export the tensors of a checkpoint to .npz (numpy) or safetensors");
    exp->add_option("FILE", file, "checkpoint file")->required();
    exp->add_option("--format", format, "npz or safetensors")->required()->check(CLI::IsMember({"npz", "safetensors"}));
    exp->add_option("-o,--output", out,
                    "output file (an existing regular file is replaced; a FIFO, device or directory is refused)")
        ->required();
    exp->add_option("--only", filter.only, "export only tensors under this path prefix (repeatable), e.g. --only model")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    exp->add_option("--exclude", filter.exclude,
                    "leave out tensors under this path prefix (repeatable), e.g. --exclude optimizer")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    std::string export_names = "paths";
    exp->add_option("--names", export_names,
                    "paths (default): entry paths as they are; dotted: '.' between path segments, as in a PyTorch "
                    "state_dict (model/fc1/weight becomes model.fc1.weight), the names ckpt import reads back")
        ->check(CLI::IsMember({"paths", "dotted"}));
    exp->footer(
        "Names: entry paths, with bytes that are not printable UTF-8 escaped as %XX. bfloat16 in npz: the dtype\n"
        "[('bfloat16', '<u2')]; in PyTorch torch.from_numpy(a.view(numpy.int16)).view(torch.bfloat16).\n"
        "safetensors: tensors ordered by element size then name (each aligned), metadata in __metadata__.");

#if CKPT_TOOL_IMPORT
    std::string import_source;
    std::vector<std::string> renames;
    auto* imp = app.add_subcommand(
        "import",
        "Write a ckpt file from a safetensors file, an HF-sharded model (directory or *.index.json), an "
        "npz or an npy file");
    imp->add_option("SRC", import_source, "foreign file or HF model directory (recognized by content)")->required();
    imp->add_option("-o,--output", out, "ckpt file to write")->required();
    imp->add_option("--rename", renames,
                    "FROM=TO: names starting with FROM get the entry-path prefix TO instead (repeatable), "
                    "e.g. --rename model.=encoder/")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    imp->footer(
        "Names: '.' becomes '/' (model.fc1.weight -> model/fc1/weight), the inverse of\n"
        "ckpt export --names dotted. Tensors are streamed with their checksums computed on the way.");
#endif

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    try {
        if (*ls) return ckpt::tool::list(dir, ls_json, std::cout);
        if (*inspect) return ckpt::tool::inspect(file, json, std::cout);
        // One stream for details and verdicts, so that each verdict follows its own details.
        if (*verify) return ckpt::tool::verify(file, std::cout, std::cout);
        if (*diff) {
            diff_opt.json = diff_json;
            diff_opt.filter = filter;
            return ckpt::tool::diff(a, b, diff_opt, std::cout);
        }
        if (*exp) return ckpt::tool::export_tensors(file, format, out, filter, export_names);
#if CKPT_TOOL_IMPORT
        if (*imp) return ckpt::tool::import(import_source, out, renames, std::cout);
#endif
    } catch (const ckpt::error& e) {
        std::cerr << ckpt::tool::printable(e.what()) << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "ckpt: " << ckpt::tool::printable(e.what()) << "\n";
        return 2;
    }
    return 2;
}

// okserve entry point: parse the command line, run the server, map failures to exit codes
// (0 ok, 1 start-up failure, 2 bad usage).
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "server/config.hpp"
#include "server/probe.hpp"
#include "server/server.hpp"
#include "server/sys/error.hpp"

int main(int argc, char** argv) {
    using namespace okserve;
    CommandLine cl;
    try {
        cl = parse_command_line(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    if (cl.action == Command::help) {
        std::fputs(help_text().c_str(), stdout);
        return 0;
    }
    if (cl.action == Command::version) {
        std::printf("%s\n", version_text);
        return 0;
    }
    if (cl.action == Command::probe) return run_probe(cl.probe);
    try {
        return serve(cl.config);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "okserve: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {  // SysError and any other start-up failure
        std::fprintf(stderr, "okserve: %s\n", e.what());
        return 1;
    }
}

// Where the listener comes from: --unix, --fd, LISTEN_* parsing, and the checks on a
// descriptor given by someone else. Sockets live in a fresh temporary directory.
#include <doctest/doctest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/config.hpp"
#include "server/sys/error.hpp"
#include "server/sys/net.hpp"

namespace okserve {
namespace {

CommandLine parse(std::vector<std::string> args, bool activation = true) {
    std::vector<const char*> argv{"okserve"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data(), activation);
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/okserve-unit-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { ::rmdir(path.c_str()); }  // the tests leave it empty, or this fails visibly below
};

bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

std::string what_of(const auto& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_SUITE("listeners") {

TEST_CASE("socket activation variables: parsed, checked, and unset by the binary's parser") {
    SocketActivation a;
    parse_socket_activation(nullptr, nullptr, nullptr, a);
    CHECK_FALSE(a.given);
    parse_socket_activation("42", "1", "web", a);
    CHECK(a.given);
    CHECK(a.pid == 42);
    CHECK(a.count == 1);
    CHECK(a.names == std::vector<std::string>{"web"});
    parse_socket_activation("42", "3", "a::c", a);
    CHECK(a.names == std::vector<std::string>{"a", "", "c"});
    struct Bad {
        const char *pid, *fds, *names, *words;
    };
    const Bad bad[] = {
        {"x", "1", nullptr, "LISTEN_PID: 'x' is not a number"},
        {"0", "1", nullptr, "LISTEN_PID"},
        {"42", "-1", nullptr, "LISTEN_FDS"},
        {nullptr, "1", nullptr, "LISTEN_FDS: set without LISTEN_PID"},
        {"42", nullptr, nullptr, "LISTEN_PID: set without LISTEN_FDS"},
        {nullptr, nullptr, "web", "LISTEN_FDNAMES"},
        {"42", "2", "web", "names 1 sockets, LISTEN_FDS says 2"},
    };
    for (const Bad& b : bad) {
        CAPTURE(b.words);
        CHECK_THROWS_AS(parse_socket_activation(b.pid, b.fds, b.names, a), UsageError);
        CHECK(what_of([&] { parse_socket_activation(b.pid, b.fds, b.names, a); }).find(b.words) != std::string::npos);
    }

    ::setenv("LISTEN_PID", "7", 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_FDNAMES", "http", 1);
    const CommandLine library = parse({}, false);  // the library leaves them to its host
    CHECK_FALSE(library.config.activation.given);
    CHECK(std::getenv("LISTEN_FDS") != nullptr);
    const CommandLine binary = parse({});
    CHECK(binary.config.activation.given);
    CHECK(binary.config.activation.pid == 7);
    CHECK(std::getenv("LISTEN_PID") == nullptr);  // no child inherits them
    CHECK(std::getenv("LISTEN_FDS") == nullptr);
    CHECK(std::getenv("LISTEN_FDNAMES") == nullptr);
}

TEST_CASE("--unix, --unix-mode, --fd and the flags they exclude") {
    const Config c = parse({"--unix", "/run/x.sock", "--unix-mode", "0600", "--backlog", "16"}).config;
    CHECK(c.unix_path == "/run/x.sock");
    CHECK(c.unix_mode == 0600);
    CHECK(parse({"--unix", "/run/x.sock"}).config.unix_mode == 0660);
    CHECK(parse({"--fd", "0"}).config.listen_fd == 0);
    const std::vector<std::string> refused[] = {
        {"--unix", "/x", "--port", "1"}, {"--unix", "/x", "--host", "::1"},
        {"--unix", "/x", "--defer-accept", "off"}, {"--unix", "/x", "--fd", "3"},
        {"--fd", "3", "--backlog", "5"}, {"--fd", "3", "--unix-mode", "0600"},
        {"--unix-mode", "0600"}, {"--unix-mode", "8"}, {"--unix-mode", "01777"}, {"--fd", "-1"}, {"--unix", ""},
    };
    for (const auto& args : refused) {
        CAPTURE(args[0] + " " + args[1] + " " + args[2]);
        CHECK_THROWS_AS(parse(args), UsageError);
    }
}

TEST_CASE("a Unix listener: its mode, a stale file replaced, a live one refused, its file removed") {
    TempDir dir;
    const std::string path = dir.path + "/s.sock";
    {
        Listener l = open_unix_listener(path, 0600, 8);
        CHECK(l.address == "unix:" + path);
        CHECK(l.family == AF_UNIX);
        CHECK_FALSE(l.tcp());
        CHECK_FALSE(l.inherited());
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        // Live: a second listener on the path is refused and the first one's file stays.
        const std::string why = what_of([&] { open_unix_listener(path, 0600, 8); });
        CHECK(why.find("a server is listening on it") != std::string::npos);
        CHECK(exists(path));
        l = Listener();  // assigning over it ends it: its file goes
        CHECK_FALSE(exists(path));
        // Stale: a socket bound and closed without listening leaves its file behind, as a
        // crashed server's does.
        {
            Fd raw(::socket(AF_UNIX, SOCK_STREAM, 0));
            sockaddr_un u{};
            u.sun_family = AF_UNIX;
            path.copy(u.sun_path, path.size());
            REQUIRE(::bind(raw.get(), reinterpret_cast<sockaddr*>(&u), sizeof u) == 0);
        }
        CHECK(exists(path));
        SocketFile moved;
        {
            Listener again = open_unix_listener(path, 0660, 8);
            moved = std::move(again.file);
        }
        CHECK(exists(path));  // moved out: the Listener's end removed nothing
        moved.remove();
        CHECK_FALSE(exists(path));
    }
    CHECK_FALSE(exists(path));
    CHECK_THROWS_AS(open_unix_listener(dir.path + "/" + std::string(120, 'x'), 0600, 8), UsageError);
    CHECK_THROWS_AS(open_unix_listener(dir.path + "/no/such/dir.sock", 0600, 8), SysError);
}

TEST_CASE("a socket file replaced by someone else is not removed") {
    TempDir dir;
    const std::string path = dir.path + "/s.sock";
    Listener l = open_unix_listener(path, 0600, 8);
    REQUIRE(::unlink(path.c_str()) == 0);
    Listener newer = open_unix_listener(path, 0600, 8);  // a newer server took the path
    l.file.remove();
    CHECK(exists(path));
    newer.file.remove();
    CHECK_FALSE(exists(path));
}

TEST_CASE("a given descriptor: listening stream sockets only; the original stays open") {
    Fd tcp(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(tcp.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(tcp.get(), 4) == 0);
    {
        Listener l = adopt_listener(tcp.get(), "--fd test");
        CHECK(l.inherited());
        CHECK(l.tcp());
        CHECK(l.backlog == -1);
        CHECK(l.port != 0);
        CHECK(l.address.rfind("127.0.0.1:", 0) == 0);
        CHECK(l.fd.get() != tcp.get());
        CHECK((::fcntl(l.fd.get(), F_GETFL) & O_NONBLOCK) != 0);
        CHECK((::fcntl(tcp.get(), F_GETFD) & FD_CLOEXEC) != 0);
    }
    CHECK(::fcntl(tcp.get(), F_GETFD) >= 0);  // still open: it is the giver's

    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    Fd p0(pair[0]), p1(pair[1]);
    Fd udp(::socket(AF_INET, SOCK_DGRAM, 0));
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    Fd r(pipefd[0]), w(pipefd[1]);
    CHECK(what_of([&] { adopt_listener(p0.get(), "x"); }).find("not listening") != std::string::npos);
    CHECK(what_of([&] { adopt_listener(udp.get(), "x"); }).find("not a stream socket") != std::string::npos);
    CHECK(what_of([&] { adopt_listener(r.get(), "x"); }).find("not a socket (a pipe)") != std::string::npos);
    const int closed = r.release();
    ::close(closed);
    CHECK_THROWS_AS(adopt_listener(closed, "x"), SysError);
}

}  // TEST_SUITE

}  // namespace okserve

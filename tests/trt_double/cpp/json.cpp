// The JSON value's writer and a strict recursive-descent parser (plans and timing caches the
// double reads back must be exactly what it wrote, or they are refused).
#include "json.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace trtforge_double {

int64_t Json::as_int(int64_t fallback) const {
    if (kind_ == Kind::Int) return i_;
    if (kind_ == Kind::Num) return static_cast<int64_t>(n_);
    return fallback;
}

double Json::as_num(double fallback) const {
    if (kind_ == Kind::Num) return n_;
    if (kind_ == Kind::Int) return static_cast<double>(i_);
    return fallback;
}

const std::string& Json::as_str() const {
    static const std::string empty;
    return kind_ == Kind::Str ? s_ : empty;
}

Json& Json::operator[](const std::string& key) {
    if (kind_ == Kind::Null) kind_ = Kind::Obj;
    for (auto& m : o_) {
        if (m.first == key) return m.second;
    }
    o_.emplace_back(key, Json());
    return o_.back().second;
}

const Json* Json::get(const std::string& key) const {
    for (const auto& m : o_) {
        if (m.first == key) return &m.second;
    }
    return nullptr;
}

Json& Json::push(Json v) {
    if (kind_ == Kind::Null) kind_ = Kind::Arr;
    a_.push_back(std::move(v));
    return a_.back();
}

namespace {

void quote(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
}

void write(std::string& out, const Json& j) {
    switch (j.kind()) {
    case Json::Kind::Null: out += "null"; break;
    case Json::Kind::Bool: out += j.as_bool() ? "true" : "false"; break;
    case Json::Kind::Int: out += std::to_string(j.as_int()); break;
    case Json::Kind::Num: {
        double v = j.as_num();
        if (!std::isfinite(v)) {
            out += "null";
            break;
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.9g", v);
        out += buf;
        break;
    }
    case Json::Kind::Str: quote(out, j.as_str()); break;
    case Json::Kind::Arr: {
        out += '[';
        bool first = true;
        for (const auto& v : j.items()) {
            if (!first) out += ',';
            first = false;
            write(out, v);
        }
        out += ']';
        break;
    }
    case Json::Kind::Obj: {
        out += '{';
        bool first = true;
        for (const auto& m : j.members()) {
            if (!first) out += ',';
            first = false;
            quote(out, m.first);
            out += ':';
            write(out, m.second);
        }
        out += '}';
        break;
    }
    }
}

struct Parser {
    const std::string& s;
    size_t i = 0;
    std::string err;

    bool fail(const char* why) {
        if (err.empty()) err = std::string(why) + " at byte " + std::to_string(i);
        return false;
    }
    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
    }
    bool lit(const char* word) {
        size_t n = std::char_traits<char>::length(word);
        if (s.compare(i, n, word) != 0) return fail("bad literal");
        i += n;
        return true;
    }
    bool str(std::string& out) {
        if (i >= s.size() || s[i] != '"') return fail("expected a string");
        ++i;
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i >= s.size()) return fail("bad escape");
            char e = s[i++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'u': {
                if (i + 4 > s.size()) return fail("bad \\u escape");
                unsigned long cp = std::strtoul(s.substr(i, 4).c_str(), nullptr, 16);
                i += 4;
                // The double only writes \u00XX for control characters.
                if (cp < 0x80) {
                    out += static_cast<char>(cp);
                } else if (cp < 0x800) {
                    out += static_cast<char>(0xC0 | (cp >> 6));
                    out += static_cast<char>(0x80 | (cp & 0x3F));
                } else {
                    out += static_cast<char>(0xE0 | (cp >> 12));
                    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                    out += static_cast<char>(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: return fail("bad escape");
            }
        }
        if (i >= s.size()) return fail("unterminated string");
        ++i;
        return true;
    }
    bool value(Json& out, int depth) {
        if (depth > 64) return fail("too deep");
        ws();
        if (i >= s.size()) return fail("unexpected end");
        char c = s[i];
        if (c == '{') {
            ++i;
            out = Json::object();
            ws();
            if (i < s.size() && s[i] == '}') {
                ++i;
                return true;
            }
            for (;;) {
                ws();
                std::string key;
                if (!str(key)) return false;
                ws();
                if (i >= s.size() || s[i] != ':') return fail("expected :");
                ++i;
                Json v;
                if (!value(v, depth + 1)) return false;
                out[key] = std::move(v);
                ws();
                if (i < s.size() && s[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < s.size() && s[i] == '}') {
                    ++i;
                    return true;
                }
                return fail("expected , or }");
            }
        }
        if (c == '[') {
            ++i;
            out = Json::array();
            ws();
            if (i < s.size() && s[i] == ']') {
                ++i;
                return true;
            }
            for (;;) {
                Json v;
                if (!value(v, depth + 1)) return false;
                out.push(std::move(v));
                ws();
                if (i < s.size() && s[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < s.size() && s[i] == ']') {
                    ++i;
                    return true;
                }
                return fail("expected , or ]");
            }
        }
        if (c == '"') {
            std::string v;
            if (!str(v)) return false;
            out = Json(std::move(v));
            return true;
        }
        if (c == 't') {
            out = Json(true);
            return lit("true");
        }
        if (c == 'f') {
            out = Json(false);
            return lit("false");
        }
        if (c == 'n') {
            out = Json();
            return lit("null");
        }
        size_t start = i;
        bool real = false;
        if (s[i] == '-') ++i;
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == 'e' ||
                                s[i] == 'E' || s[i] == '+' || s[i] == '-')) {
            if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') real = true;
            ++i;
        }
        if (i == start) return fail("unexpected character");
        std::string num = s.substr(start, i - start);
        char* end = nullptr;
        if (real) {
            out = Json(std::strtod(num.c_str(), &end));
        } else {
            out = Json(static_cast<int64_t>(std::strtoll(num.c_str(), &end, 10)));
        }
        if (!end || *end) return fail("bad number");
        return true;
    }
};

} // namespace

std::string Json::dump() const {
    std::string out;
    write(out, *this);
    return out;
}

bool Json::parse(const std::string& text, Json& out, std::string& err) {
    Parser p{text, 0, {}};
    if (!p.value(out, 0)) {
        err = p.err;
        return false;
    }
    p.ws();
    if (p.i != text.size()) {
        err = "trailing bytes at " + std::to_string(p.i);
        return false;
    }
    return true;
}

} // namespace trtforge_double

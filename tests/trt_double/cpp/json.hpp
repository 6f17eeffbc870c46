// A small JSON value for the double's record, its plan files and timing caches. Objects keep
// insertion order (the record reads in call order).
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace trtforge_double {

class Json {
public:
    enum class Kind { Null, Bool, Int, Num, Str, Arr, Obj };

    Json() = default;
    Json(std::nullptr_t) {}
    Json(bool b) : kind_(Kind::Bool), b_(b) {}
    template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Json(T v) : kind_(Kind::Int), i_(static_cast<int64_t>(v)) {}
    Json(double v) : kind_(Kind::Num), n_(v) {}
    Json(const char* s) : kind_(Kind::Str), s_(s ? s : "") {}
    Json(std::string s) : kind_(Kind::Str), s_(std::move(s)) {}

    static Json array() { Json j; j.kind_ = Kind::Arr; return j; }
    static Json object() { Json j; j.kind_ = Kind::Obj; return j; }

    Kind kind() const { return kind_; }
    bool is_null() const { return kind_ == Kind::Null; }
    bool is_array() const { return kind_ == Kind::Arr; }
    bool is_object() const { return kind_ == Kind::Obj; }
    bool is_string() const { return kind_ == Kind::Str; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Num; }

    bool as_bool(bool fallback = false) const { return kind_ == Kind::Bool ? b_ : fallback; }
    int64_t as_int(int64_t fallback = 0) const;
    double as_num(double fallback = 0) const;
    const std::string& as_str() const; // "" unless a string

    // Object: the member `key`, inserted as null when absent (turns a null into an object).
    Json& operator[](const std::string& key);
    // Object: the member `key`, or nullptr.
    const Json* get(const std::string& key) const;
    const std::vector<std::pair<std::string, Json>>& members() const { return o_; }

    // Array: append (turns a null into an array); the appended element.
    Json& push(Json v);
    size_t size() const { return kind_ == Kind::Arr ? a_.size() : kind_ == Kind::Obj ? o_.size() : 0; }
    const Json& at(size_t i) const { return a_.at(i); }
    Json& at(size_t i) { return a_.at(i); }
    const std::vector<Json>& items() const { return a_; }

    std::string dump() const;
    // Strict parse of the whole text; false with `err` set on any error.
    static bool parse(const std::string& text, Json& out, std::string& err);

private:
    Kind kind_ = Kind::Null;
    bool b_ = false;
    int64_t i_ = 0;
    double n_ = 0;
    std::string s_;
    std::vector<Json> a_;
    std::vector<std::pair<std::string, Json>> o_;
};

} // namespace trtforge_double

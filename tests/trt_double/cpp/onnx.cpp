// A tiny protobuf reader for the parts of an ONNX ModelProto the double's parser needs: the
// graph's name, inputs and outputs (name, element type, dims), initializer names, and every
// node's name, op type, inputs and outputs. Field numbers are onnx.proto's; everything else is
// skipped by wire type, and malformed bytes are an error (not a crash).
#include "double.hpp"

namespace trtforge_double {

namespace {

class Reader {
public:
    Reader(const char* p, size_t n) : p_(reinterpret_cast<const uint8_t*>(p)), end_(p_ + n) {}
    bool done() const { return p_ == end_; }

    bool varint(uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) return false;
            uint8_t b = *p_++;
            v |= static_cast<uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return true;
        }
        return false;
    }
    // The next field's number and wire type.
    bool key(uint32_t& field, uint32_t& wire) {
        uint64_t k;
        if (!varint(k)) return false;
        field = static_cast<uint32_t>(k >> 3);
        wire = static_cast<uint32_t>(k & 7);
        return field != 0;
    }
    bool bytes(std::string& out) {
        uint64_t n;
        if (!varint(n) || n > static_cast<uint64_t>(end_ - p_)) return false;
        out.assign(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
        p_ += n;
        return true;
    }
    bool skip(uint32_t wire) {
        uint64_t v;
        std::string s;
        switch (wire) {
        case 0: return varint(v);
        case 1: return advance(8);
        case 2: return bytes(s);
        case 5: return advance(4);
        default: return false; // groups (3/4) are not in ONNX; anything else is not protobuf
        }
    }

private:
    bool advance(size_t n) {
        if (n > static_cast<size_t>(end_ - p_)) return false;
        p_ += n;
        return true;
    }
    const uint8_t* p_;
    const uint8_t* end_;
};

// Walk the fields of `msg`, handing each one to `f(field, wire, reader)`; `f` returns false to
// skip the field. False on malformed bytes.
template <class F>
bool fields(const std::string& msg, F&& f) {
    Reader r(msg.data(), msg.size());
    while (!r.done()) {
        uint32_t field, wire;
        if (!r.key(field, wire)) return false;
        int handled = f(field, wire, r); // 1 handled, 0 skip, -1 error
        if (handled < 0) return false;
        if (handled == 0 && !r.skip(wire)) return false;
    }
    return true;
}

// TensorShapeProto.Dimension: 1 dim_value, 2 dim_param.
bool read_dim(const std::string& msg, int64_t& out) {
    out = -1;
    return fields(msg, [&](uint32_t f, uint32_t w, Reader& r) -> int {
        if (f == 1 && w == 0) {
            uint64_t v;
            if (!r.varint(v)) return -1;
            out = static_cast<int64_t>(v);
            return 1;
        }
        return 0;
    });
}

// ValueInfoProto: 1 name, 2 type -> TypeProto 1 tensor_type -> 1 elem_type, 2 shape -> 1 dim.
bool read_value(const std::string& msg, OnnxValue& v) {
    return fields(msg, [&](uint32_t f, uint32_t w, Reader& r) -> int {
        std::string sub;
        if (w != 2 || (f != 1 && f != 2)) return 0;
        if (!r.bytes(sub)) return -1;
        if (f == 1) {
            v.name = sub;
            return 1;
        }
        bool ok = fields(sub, [&](uint32_t f2, uint32_t w2, Reader& r2) -> int {
            if (f2 != 1 || w2 != 2) return 0;
            std::string tensor;
            if (!r2.bytes(tensor)) return -1;
            return fields(tensor, [&](uint32_t f3, uint32_t w3, Reader& r3) -> int {
                       if (f3 == 1 && w3 == 0) {
                           uint64_t e;
                           if (!r3.varint(e)) return -1;
                           v.elem = static_cast<int32_t>(e);
                           return 1;
                       }
                       if (f3 == 2 && w3 == 2) {
                           std::string shape;
                           if (!r3.bytes(shape)) return -1;
                           v.has_shape = true;
                           return fields(shape, [&](uint32_t f4, uint32_t w4, Reader& r4) -> int {
                                      if (f4 != 1 || w4 != 2) return 0;
                                      std::string dim;
                                      int64_t d;
                                      if (!r4.bytes(dim) || !read_dim(dim, d)) return -1;
                                      v.dims.push_back(d);
                                      return 1;
                                  })
                                      ? 1
                                      : -1;
                       }
                       return 0;
                   })
                       ? 1
                       : -1;
        });
        return ok ? 1 : -1;
    });
}

// NodeProto: 1 input, 2 output, 3 name, 4 op_type.
bool read_node(const std::string& msg, OnnxNode& n) {
    return fields(msg, [&](uint32_t f, uint32_t w, Reader& r) -> int {
        if (w != 2 || f < 1 || f > 4) return 0;
        std::string s;
        if (!r.bytes(s)) return -1;
        if (f == 1) n.inputs.push_back(s);
        if (f == 2) n.outputs.push_back(s);
        if (f == 3) n.name = s;
        if (f == 4) n.op = s;
        return 1;
    });
}

// TensorProto: 8 name.
bool read_initializer_name(const std::string& msg, std::string& name) {
    return fields(msg, [&](uint32_t f, uint32_t w, Reader& r) -> int {
        if (f != 8 || w != 2) return 0;
        return r.bytes(name) ? 1 : -1;
    });
}

// GraphProto: 1 node, 2 name, 5 initializer, 11 input, 12 output.
bool read_graph(const std::string& msg, OnnxModel& m) {
    return fields(msg, [&](uint32_t f, uint32_t w, Reader& r) -> int {
        if (w != 2 || (f != 1 && f != 2 && f != 5 && f != 11 && f != 12)) return 0;
        std::string sub;
        if (!r.bytes(sub)) return -1;
        bool ok = true;
        if (f == 1) {
            m.nodes.emplace_back();
            ok = read_node(sub, m.nodes.back());
        } else if (f == 2) {
            m.graph_name = sub;
        } else if (f == 5) {
            std::string name;
            ok = read_initializer_name(sub, name);
            m.initializers.insert(name);
        } else {
            OnnxValue v;
            ok = read_value(sub, v);
            (f == 11 ? m.inputs : m.outputs).push_back(v);
        }
        return ok ? 1 : -1;
    });
}

} // namespace

bool read_onnx(const std::string& bytes, OnnxModel& m, std::string& err) {
    // ModelProto: 1 ir_version, 7 graph.
    bool ok = fields(bytes, [&](uint32_t f, uint32_t w, Reader& r) -> int {
        if (f == 1 && w == 0) {
            uint64_t v;
            if (!r.varint(v)) return -1;
            m.ir_version = static_cast<int64_t>(v);
            return 1;
        }
        if (f == 7 && w == 2) {
            std::string g;
            if (!r.bytes(g)) return -1;
            m.has_graph = true;
            return read_graph(g, m) ? 1 : -1;
        }
        return 0;
    });
    if (!ok) {
        err = "the file is not a protobuf message (not an ONNX model)";
        return false;
    }
    if (!m.has_graph || m.ir_version == 0) {
        err = "no ir_version or graph: not an ONNX ModelProto";
        return false;
    }
    return true;
}

} // namespace trtforge_double

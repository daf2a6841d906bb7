//! The floating-point codes IGMPv3 and MLDv2 use for times: RFC 3376
//! §4.1.1/§4.1.7 (8 bits, 1|exp(3)|mant(4)) and RFC 3810 §5.1.3/§5.1.9
//! (16 bits, 1|exp(3)|mant(12)). Below 2^(bits-1) a code is the value
//! itself; above, it means (mant | 1 << MANT) << (exp + 3). One algorithm,
//! the width of the mantissa its only parameter.

/// The value a code of a format with `mant_bits` mantissa bits stands for.
pub const fn decode(code: u32, mant_bits: u32) -> u32 {
    let literal_below = 1 << (mant_bits + 3);
    if code < literal_below {
        code
    } else {
        let exp = (code >> mant_bits) & 0x7;
        let mant = code & ((1 << mant_bits) - 1);
        (mant | (1 << mant_bits)) << (exp + 3)
    }
}

/// The code of `value`, rounding down; values above the largest the format
/// can say saturate to its all-ones code.
pub const fn encode(value: u32, mant_bits: u32) -> u32 {
    let literal_below = 1 << (mant_bits + 3);
    if value < literal_below {
        return value;
    }
    let mut exp = 0u32;
    while exp < 8 {
        let m = value >> (exp + 3);
        if m < (2 << mant_bits) {
            // m has its top bit at mant_bits because value >= literal_below.
            return literal_below | (exp << mant_bits) | (m & ((1 << mant_bits) - 1));
        }
        exp += 1;
    }
    (literal_below << 1) - 1
}

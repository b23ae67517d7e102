//! The participants CSV's rows written straight from the stored records' JSON, in one pass
//! over each record, with no [`Record`](super::records::Record) made in between.
//!
//! A stored record is the API's JSON: its fields always in one order
//! ([`super::participants::ParticipantResponse`]), written by serde_json. So each field's key
//! is checked as a constant, and most values are copied as they are: a number's digits and a
//! flag's `true` or `false` are its cell, and a text that escapes nothing is its cell's bytes
//! (serde_json escapes every quote and control character, so such a text can need quoting only
//! for a comma, and never a quote doubled). Only the two times are read as numbers. A record
//! in any other shape is left to the general row ([`write`] gives `None`), which the property
//! test below holds this one to.

use super::records::{scalar_len, string_len};
use super::spreadsheet::{Clock, write_text};

/// Writes the CSV row of a stored record's `json` to `out`, times by `clock`: the cells in
/// [`super::views`]'s participant columns, CRLF after. `None`, with part of a row written, if
/// the JSON is not in the API's shape.
pub fn write(json: &[u8], out: &mut Vec<u8>, clock: &mut Clock<'_>) -> Option<()> {
    let mut row = Row {
        rest: json,
        out,
        clock,
    };
    row.text(b"{\"userid\":")?;
    row.text(b",\"ms_open_id\":")?;
    row.text(b",\"uuid\":")?;
    row.text(b",\"open_id\":")?;
    row.text(b",\"user_name\":")?;
    row.text(b",\"user_name_base64\":")?;
    row.flag(b",\"is_enterprise_user\":")?;
    row.text(b",\"phone\":")?;
    row.time(b",\"join_time\":", false)?;
    row.time(b",\"left_time\":", true)?;
    row.number(b",\"instanceid\":")?;
    row.number(b",\"user_role\":")?;
    row.number(b",\"webinar_member_role\":")?;
    row.text(b",\"IP\":")?;
    row.text(b",\"location\":")?;
    row.text(b",\"link_type\":")?;
    row.number(b",\"join_type\":")?;
    row.text(b",\"net\":")?;
    row.text(b",\"app_version\":")?;
    row.flag(b",\"audio_state\":")?;
    row.flag(b",\"video_state\":")?;
    row.flag(b",\"screen_shared_state\":")?;
    row.text(b",\"customer_data\":")?;
    // `provisional` is left out when false.
    row.out.extend_from_slice(match row.rest {
        b"}" | b",\"provisional\":false}" => b",false\r\n",
        b",\"provisional\":true}" => b",true\r\n",
        _ => return None,
    });
    Some(())
}

/// A record being written: the JSON after the last value read, and the row so far.
struct Row<'a, 'o, 'z> {
    rest: &'a [u8],
    out: &'o mut Vec<u8>,
    clock: &'o mut Clock<'z>,
}

impl<'a> Row<'a, '_, '_> {
    /// Takes the field's key (with the comma or brace before it: a constant, so that its
    /// comparison is a few instructions once inlined) and starts its cell.
    #[inline(always)]
    fn key(&mut self, key: &'static [u8]) -> Option<()> {
        self.rest = self.rest.strip_prefix(key)?;
        if key[0] == b',' {
            self.out.push(b',');
        }
        Some(())
    }

    /// A number, `true`, `false` or `null` (see [`scalar_len`]).
    #[inline(always)]
    fn scalar(&mut self) -> Option<&'a [u8]> {
        let len = scalar_len(self.rest)?;
        let (value, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(value)
    }

    /// An integer's cell: its digits as they are (serde_json writes an `i64` as itoa does,
    /// which is how a number cell is written); empty for `null`.
    #[inline(always)]
    fn number(&mut self, key: &'static [u8]) -> Option<()> {
        self.key(key)?;
        match self.scalar()? {
            b"null" => {}
            digits => {
                let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
                if unsigned.is_empty() || !unsigned.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                self.out.extend_from_slice(digits);
            }
        }
        Some(())
    }

    /// A flag's cell: `true` or `false` as they are; empty for `null`.
    #[inline(always)]
    fn flag(&mut self, key: &'static [u8]) -> Option<()> {
        self.key(key)?;
        match self.scalar()? {
            b"null" => {}
            value @ (b"true" | b"false") => self.out.extend_from_slice(value),
            _ => return None,
        }
        Some(())
    }

    /// A time's cell, ISO 8601 in the clock's zone; empty for `null` where `nullable`.
    #[inline(always)]
    fn time(&mut self, key: &'static [u8], nullable: bool) -> Option<()> {
        self.key(key)?;
        match self.scalar()? {
            b"null" if nullable => {}
            digits => self.clock.write(self.out, integer(digits)?),
        }
        Some(())
    }

    /// A text's cell: the text (neutralised if a spreadsheet would take it for a formula),
    /// quoted when it holds a comma; empty for `null`. A text with an escape is decoded and
    /// written by the general rule.
    #[inline(always)]
    fn text(&mut self, key: &'static [u8]) -> Option<()> {
        self.key(key)?;
        let Some(string) = self.rest.strip_prefix(b"\"") else {
            self.rest = self.rest.strip_prefix(b"null")?;
            return Some(());
        };
        // The text's end, and whether a comma comes before it, in one search.
        let mut comma = false;
        let mut at = 0;
        let end = loop {
            at += memchr::memchr3(b'"', b'\\', b',', &string[at..])?;
            match string[at] {
                b'"' => break at,
                b',' => (comma, at) = (true, at + 1),
                _ => return self.escaped_text(),
            }
        };
        let text = &string[..end];
        debug_assert!(
            !text.contains(&b'\r') && !text.contains(&b'\n'),
            "serde_json escapes line ends"
        );
        if comma {
            self.out.push(b'"');
        }
        if super::spreadsheet::is_formula(text) {
            self.out.push(b'\'');
        }
        self.out.extend_from_slice(text);
        if comma {
            self.out.push(b'"');
        }
        self.rest = &string[end + 1..];
        Some(())
    }

    /// A text holding an escape (rare: a quote, a backslash or a control character), decoded.
    #[cold]
    fn escaped_text(&mut self) -> Option<()> {
        let json = self.rest;
        let (len, _) = string_len(json)?;
        let text: String = serde_json::from_slice(&json[..len]).ok()?;
        write_text(self.out, text.as_bytes());
        self.rest = &json[len..];
        Some(())
    }
}

/// An integer's JSON digits as an `i64`; `None` for anything else.
#[inline]
fn integer(digits: &[u8]) -> Option<i64> {
    let (negative, unsigned) = match digits.strip_prefix(b"-") {
        Some(unsigned) => (true, unsigned),
        None => (false, digits),
    };
    if unsigned.is_empty() {
        return None;
    }
    // Summed negatively, so that `i64::MIN` fits.
    let mut value: i64 = 0;
    for &digit in unsigned {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_sub(i64::from(digit - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_to_their_limits_and_nothing_else_is() {
        assert_eq!(integer(b"0"), Some(0));
        assert_eq!(integer(b"1714500000"), Some(1_714_500_000));
        assert_eq!(integer(b"-42"), Some(-42));
        assert_eq!(integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(integer(b"-9223372036854775808"), Some(i64::MIN));
        for not in [
            &b"9223372036854775808"[..],
            b"",
            b"-",
            b"1.5",
            b"1e3",
            b"+1",
            b"null",
        ] {
            assert_eq!(integer(not), None, "{}", String::from_utf8_lossy(not));
        }
    }
}

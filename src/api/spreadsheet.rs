//! CSV files as Excel opens them: UTF-8 after a byte-order mark, RFC 4180 quoting, CRLF line
//! ends, times as ISO 8601 in a zone, and text that a spreadsheet would take for a formula
//! neutralised.
//!
//! The bytes are those the `csv` crate's writer makes (its default `Necessary` quoting, CRLF
//! ends; a property test holds the two equal), written here directly: at 24 cells a record and
//! 50,000 records a list, the crate's byte-at-a-time field writer was a quarter of a CSV
//! rendering's CPU, and the rule it applies fits in one function ([`write_text`]).

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Excel reads a UTF-8 CSV file as UTF-8 (Chinese names intact) when it starts with a BOM.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// A text cell (of `str` or of its UTF-8 bytes), empty for `None`.
pub fn text<'a, T>(value: &'a Option<T>) -> Cell<'a>
where
    T: std::ops::Deref<Target: AsRef<[u8]> + 'a>,
{
    value
        .as_deref()
        .map_or(Cell::Empty, |text| Cell::Text(text.as_ref()))
}

/// One CSV cell; `None` values are empty cells.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// UTF-8.
    Text(&'a [u8]),
    Empty,
    Number(i64),
    Bool(bool),
    /// Unix seconds, written as ISO 8601 in the answer's zone.
    Time(Option<i64>),
}

impl From<Option<i64>> for Cell<'_> {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Cell::Empty, Cell::Number)
    }
}

impl From<Option<bool>> for Cell<'_> {
    fn from(value: Option<bool>) -> Self {
        value.map_or(Cell::Empty, Cell::Bool)
    }
}

/// A CSV document being written, after a byte-order mark.
pub struct Csv<'z> {
    out: Vec<u8>,
    tz: &'z TimeZone,
}

impl<'z> Csv<'z> {
    /// A document, or (without `bom`) rows to follow another's.
    pub fn new(bytes: usize, tz: &'z TimeZone, bom: bool) -> Self {
        let mut out = Vec::with_capacity(bytes + BOM.len());
        if bom {
            out.extend_from_slice(BOM);
        }
        Self { out, tz }
    }

    /// One row. (Every row has several cells: a lone empty cell would need quotes to be a row.)
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) {
        let out = &mut self.out;
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Only a text can hold a comma, quote or line end: the others are written as they are.
            match cell {
                Cell::Text(text) => write_text(out, text),
                Cell::Empty | Cell::Time(None) => {}
                Cell::Number(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
                Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Cell::Time(Some(seconds)) => write_time(out, seconds, self.tz),
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Whether a spreadsheet would take the text for a formula: it starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return (OWASP's list).
fn is_formula(text: &[u8]) -> bool {
    matches!(text, [b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r', ..])
}

/// A text cell. Text that a spreadsheet would take for a formula is neutralised by a leading
/// `'`, as OWASP advises. A field holding a comma, quote or line end is quoted, its quotes
/// doubled (RFC 4180, section 2).
fn write_text(out: &mut Vec<u8>, text: &[u8]) {
    let quoted = text
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if quoted {
        out.push(b'"');
    }
    if is_formula(text) {
        out.push(b'\'');
    }
    if quoted {
        let mut rest = text;
        while let Some(at) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=at]);
            out.push(b'"');
            rest = &rest[at + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

/// Unix seconds as ISO 8601 with the zone's offset at that instant, `2024-05-01T09:30:00+08:00`.
fn write_time(out: &mut Vec<u8>, seconds: i64, tz: &TimeZone) {
    let Some((offset, civil)) = Timestamp::from_second(seconds)
        .ok()
        .map(|at| (tz.to_offset(at), at))
        .map(|(offset, at)| (offset, offset.to_datetime(at)))
        .filter(|(_, civil)| civil.year() >= 1)
    else {
        // Outside the years 1 to 9999 (the upstream's data is broken): the number.
        return out.extend_from_slice(itoa::Buffer::new().format(seconds).as_bytes());
    };
    let total = offset.seconds();
    let (sign, total) = (if total < 0 { b'-' } else { b'+' }, total.unsigned_abs());
    // Two digits at a time, each by a constant divisor.
    let two = |out: &mut Vec<u8>, value: u32| {
        out.extend_from_slice(&[b'0' + (value / 10 % 10) as u8, b'0' + (value % 10) as u8]);
    };
    let year = u32::from(civil.year().unsigned_abs());
    two(out, year / 100);
    two(out, year);
    out.push(b'-');
    two(out, civil.month().unsigned_abs().into());
    out.push(b'-');
    two(out, civil.day().unsigned_abs().into());
    out.push(b'T');
    two(out, civil.hour().unsigned_abs().into());
    out.push(b':');
    two(out, civil.minute().unsigned_abs().into());
    out.push(b':');
    two(out, civil.second().unsigned_abs().into());
    out.push(sign);
    two(out, total / 3600);
    out.push(b':');
    two(out, total % 3600 / 60);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The rows as the `csv` crate writes them (default quoting, CRLF), each cell's text made
    /// as [`Csv::row`] makes it.
    fn by_the_csv_crate(rows: &[Vec<Cell<'_>>], tz: &TimeZone) -> Vec<u8> {
        let mut out = BOM.to_vec();
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .flexible(true)
            .from_writer(&mut out);
        for row in rows {
            for cell in row {
                let mut field = Vec::new();
                match *cell {
                    Cell::Text(text) => {
                        if is_formula(text) {
                            field.push(b'\'');
                        }
                        field.extend_from_slice(text);
                    }
                    Cell::Empty | Cell::Time(None) => {}
                    Cell::Number(n) => field.extend_from_slice(n.to_string().as_bytes()),
                    Cell::Bool(b) => field.extend_from_slice(b.to_string().as_bytes()),
                    Cell::Time(Some(seconds)) => write_time(&mut field, seconds, tz),
                }
                writer.write_field(field).unwrap();
            }
            writer.write_record(None::<&[u8]>).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        out
    }

    #[test]
    fn times_are_iso_8601_in_the_zone_and_formulas_are_neutralised() {
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let mut out = Vec::new();
        write_time(&mut out, 1_572_085_800, &shanghai);
        assert_eq!(out, b"2019-10-26T18:30:00+08:00");
        out.clear();
        write_time(&mut out, 1_572_085_800, &berlin); // summer time, still
        assert_eq!(out, b"2019-10-26T12:30:00+02:00");
        out.clear();
        write_time(&mut out, 1_572_800_000, &berlin);
        assert_eq!(out, b"2019-11-03T17:53:20+01:00");
        for (text, written) in [
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("张伟", "张伟"),
            ("a=b", "a=b"),
            ("a,b", "\"a,b\""),
            ("-1,\r\n", "\"'-1,\r\n\""),
        ] {
            let mut out = Vec::new();
            write_text(&mut out, text.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), written);
        }
    }

    proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(1_000))]

        /// Rows of any cells (texts with commas, quotes, line ends, formula characters and any
        /// Unicode; numbers; flags; times near and far) are written byte for byte as the `csv`
        /// crate writes them.
        #[test]
        fn rows_are_what_the_csv_crate_writes(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        "([,\"\r\n'=+@\t -]|a|张|.){0,8}".prop_map(|t| (0u8, t, 0i64)),
                        Just((1u8, String::new(), 0)),
                        any::<i64>().prop_map(|n| (2u8, String::new(), n)),
                        any::<bool>().prop_map(|b| (3u8, String::new(), i64::from(b))),
                        (-80_000_000_000..300_000_000_000i64).prop_map(|s| (4u8, String::new(), s)),
                    ],
                    2..6,
                ),
                0..6,
            ),
        ) {
            let tz = TimeZone::get("Europe/Berlin").unwrap();
            let rows: Vec<Vec<Cell<'_>>> = rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|(kind, text, n)| match kind {
                            0 => Cell::Text(text.as_bytes()),
                            1 => Cell::Empty,
                            2 => Cell::Number(*n),
                            3 => Cell::Bool(*n == 1),
                            _ => Cell::Time(Some(*n)),
                        })
                        .collect()
                })
                .collect();
            let mut csv = Csv::new(0, &tz, true);
            for row in &rows {
                csv.row(row.iter().copied());
            }
            prop_assert_eq!(
                String::from_utf8(csv.finish()).unwrap(),
                String::from_utf8(by_the_csv_crate(&rows, &tz)).unwrap()
            );
        }
    }
}

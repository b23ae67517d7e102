//! CSV files as Excel opens them: UTF-8 after a byte-order mark, RFC 4180 quoting, CRLF line
//! ends, times as ISO 8601 in a zone, and text that a spreadsheet would take for a formula
//! neutralised.
//!
//! The bytes are those the `csv` crate's writer makes (its default `Necessary` quoting, CRLF
//! ends; a property test holds the two equal), written here directly: at 24 cells a record and
//! 50,000 records a list, the crate's byte-at-a-time field writer was a quarter of a CSV
//! rendering's CPU, and the rule it applies fits in one function ([`write_text`]).

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};

/// Excel reads a UTF-8 CSV file as UTF-8 (Chinese names intact) when it starts with a BOM.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// A text cell from text read from JSON, empty for `None`. Text borrowed from the JSON is its
/// bytes between the quotes, which hold no quote (JSON escapes every one): a quote-free cell.
pub fn from_json<'a, T>(value: Option<&'a Cow<'_, T>>) -> Cell<'a>
where
    T: ?Sized + ToOwned + AsRef<[u8]>,
{
    match value {
        None => Cell::Empty,
        Some(Cow::Borrowed(text)) => Cell::QuoteFree(text.as_ref()),
        Some(text) => Cell::Text(text.as_ref().as_ref()),
    }
}

/// One CSV cell; `None` values are empty cells.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// UTF-8.
    Text(&'a [u8]),
    /// UTF-8 that holds no quote: only a comma or line end can make it quoted, and no quote
    /// needs doubling: one vectorised search decides, where a text is searched byte by byte.
    QuoteFree(&'a [u8]),
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
    clock: Clock<'z>,
}

impl<'z> Csv<'z> {
    /// A document, or (without `bom`) rows to follow another's.
    pub fn new(bytes: usize, tz: &'z TimeZone, bom: bool) -> Self {
        let mut out = Vec::with_capacity(bytes + BOM.len());
        if bom {
            out.extend_from_slice(BOM);
        }
        Self {
            out,
            clock: Clock::new(tz),
        }
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
                Cell::QuoteFree(text) => write_quote_free(out, text),
                Cell::Empty | Cell::Time(None) => {}
                Cell::Number(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
                Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Cell::Time(Some(seconds)) => self.clock.write(out, seconds),
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// A row written by `write` to the document's bytes, times by its clock; if `write` gives
    /// up (`None`), whatever it wrote is taken back.
    pub fn row_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>, &mut Clock<'z>) -> Option<()>,
    ) -> Option<()> {
        let len = self.out.len();
        let written = write(&mut self.out, &mut self.clock);
        if written.is_none() {
            self.out.truncate(len);
        }
        written
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Whether a spreadsheet would take the text for a formula: it starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return (OWASP's list).
pub(super) fn is_formula(text: &[u8]) -> bool {
    matches!(text, [b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r', ..])
}

/// A text cell. Text that a spreadsheet would take for a formula is neutralised by a leading
/// `'`, as OWASP advises. A field holding a comma, quote or line end is quoted, its quotes
/// doubled (RFC 4180, section 2).
pub(super) fn write_text(out: &mut Vec<u8>, text: &[u8]) {
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

/// A text cell of text that holds no quote: [`write_text`]'s rule, with one search.
fn write_quote_free(out: &mut Vec<u8>, text: &[u8]) {
    debug_assert!(!text.contains(&b'"'), "a quote-free text holds no quote");
    let quoted = memchr::memchr3(b',', b'\r', b'\n', text).is_some();
    if quoted {
        out.push(b'"');
    }
    if is_formula(text) {
        out.push(b'\'');
    }
    out.extend_from_slice(text);
    if quoted {
        out.push(b'"');
    }
}

/// Writes unix seconds as ISO 8601 with the zone's offset at that instant,
/// `2024-05-01T09:30:00+08:00`.
///
/// Finding the offset and the civil date was most of a time's cost, and a list's times lie
/// within a few days and between two of the zone's transitions: the clock keeps the offset of
/// the span between two transitions, and the date of a local day. Two of each, the latest
/// first, as a session's join and leave may lie either side of midnight or of a transition.
pub(super) struct Clock<'z> {
    tz: &'z TimeZone,
    spans: Recent<Span>,
    days: Recent<Day>,
}

/// Seconds `from..until` over which a zone's offset holds, and the offset as written.
#[derive(Clone, Copy)]
struct Span {
    from: i64,
    until: i64,
    offset: Offset,
    written: [u8; 6],
}

/// A local day, counted from 1970-01-01, and its date as written.
#[derive(Clone, Copy)]
struct Day {
    number: i64,
    written: [u8; 10],
}

const DAY: i64 = 86_400;

impl<'z> Clock<'z> {
    fn new(tz: &'z TimeZone) -> Self {
        Self {
            tz,
            spans: Recent::default(),
            days: Recent::default(),
        }
    }

    pub(super) fn write(&mut self, out: &mut Vec<u8>, seconds: i64) {
        let Some((span, day, local)) = self.span(seconds).and_then(|span| {
            let local = seconds + i64::from(span.offset.seconds());
            Some((
                span,
                self.day(local.div_euclid(DAY), seconds, span.offset)?,
                local,
            ))
        }) else {
            // Outside the years 1 to 9999 (the upstream's data is broken): the number.
            return out.extend_from_slice(itoa::Buffer::new().format(seconds).as_bytes());
        };
        let time = local.rem_euclid(DAY) as u32;
        out.extend_from_slice(&day.written);
        out.push(b'T');
        out.extend_from_slice(&two(time / 3600));
        out.push(b':');
        out.extend_from_slice(&two(time % 3600 / 60));
        out.push(b':');
        out.extend_from_slice(&two(time % 60));
        out.extend_from_slice(&span.written);
    }

    /// The span of the zone's offsets holding `seconds`; `None` outside jiff's range.
    fn span(&mut self, seconds: i64) -> Option<Span> {
        let tz = self.tz;
        self.spans.find(
            |span| (span.from..span.until).contains(&seconds),
            || {
                let at = Timestamp::from_second(seconds).ok()?;
                // The last transition at or before `at` (`preceding` gives those strictly
                // before the instant it is given) and the first after it.
                let from = match Timestamp::from_second(seconds + 1) {
                    Ok(next) => tz
                        .preceding(next)
                        .next()
                        .map_or(i64::MIN, |t| t.timestamp().as_second()),
                    Err(_) => seconds, // jiff's last second
                };
                let until = tz
                    .following(at)
                    .next()
                    .map_or(i64::MAX, |t| t.timestamp().as_second());
                let offset = tz.to_offset(at);
                let total = offset.seconds();
                let sign = if total < 0 { b'-' } else { b'+' };
                let total = total.unsigned_abs();
                let ([h1, h2], [m1, m2]) = (two(total / 3600), two(total % 3600 / 60));
                Some(Span {
                    from,
                    until,
                    offset,
                    written: [sign, h1, h2, b':', m1, m2],
                })
            },
        )
    }

    /// The local day `number`, which holds `seconds` at `offset`; `None` before the year 1.
    fn day(&mut self, number: i64, seconds: i64, offset: Offset) -> Option<Day> {
        self.days.find(
            |day| day.number == number,
            || {
                let civil = offset.to_datetime(Timestamp::from_second(seconds).ok()?);
                let year = u32::try_from(civil.year()).ok().filter(|&y| y >= 1)?;
                let ([y1, y2], [y3, y4]) = (two(year / 100), two(year));
                let [mo1, mo2] = two(civil.month().unsigned_abs().into());
                let [d1, d2] = two(civil.day().unsigned_abs().into());
                Some(Day {
                    number,
                    written: [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2],
                })
            },
        )
    }
}

/// The last two of something worked out, the latest first.
struct Recent<T>([Option<T>; 2]);

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self([None, None])
    }
}

impl<T: Copy> Recent<T> {
    /// The one that `fits`, else the one `made` (kept, in place of the older).
    fn find(&mut self, fits: impl Fn(&T) -> bool, made: impl FnOnce() -> Option<T>) -> Option<T> {
        match self.0 {
            [Some(latest), _] if fits(&latest) => Some(latest),
            [latest, Some(older)] if fits(&older) => {
                self.0 = [Some(older), latest];
                Some(older)
            }
            [latest, _] => {
                let new = made()?;
                self.0 = [Some(new), latest];
                Some(new)
            }
        }
    }
}

/// The last two decimal digits of `value`.
fn two(value: u32) -> [u8; 2] {
    [b'0' + (value / 10 % 10) as u8, b'0' + (value % 10) as u8]
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
                    Cell::Text(text) | Cell::QuoteFree(text) => {
                        if is_formula(text) {
                            field.push(b'\'');
                        }
                        field.extend_from_slice(text);
                    }
                    Cell::Empty | Cell::Time(None) => {}
                    Cell::Number(n) => field.extend_from_slice(n.to_string().as_bytes()),
                    Cell::Bool(b) => field.extend_from_slice(b.to_string().as_bytes()),
                    Cell::Time(Some(seconds)) => {
                        field.extend_from_slice(by_jiff(seconds, tz).as_bytes())
                    }
                }
                writer.write_field(field).unwrap();
            }
            writer.write_record(None::<&[u8]>).unwrap();
        }
        writer.flush().unwrap();
        drop(writer);
        out
    }

    /// A time as jiff writes it, worked out afresh: `YYYY-MM-DDTHH:MM:SS` and the offset's sign,
    /// hours and minutes; the number outside the years 1 to 9999.
    fn by_jiff(seconds: i64, tz: &TimeZone) -> String {
        match Timestamp::from_second(seconds).map(|at| at.to_zoned_datetime(tz.clone())) {
            Ok(zoned) if zoned.year() >= 1 => {
                let offset = zoned.offset().seconds();
                let (sign, offset) = (if offset < 0 { '-' } else { '+' }, offset.abs());
                format!(
                    "{}{sign}{:02}:{:02}",
                    zoned.strftime("%Y-%m-%dT%H:%M:%S"),
                    offset / 3600,
                    offset % 3600 / 60
                )
            }
            _ => seconds.to_string(),
        }
    }

    fn written(clock: &mut Clock<'_>, seconds: i64) -> String {
        let mut out = Vec::new();
        clock.write(&mut out, seconds);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_are_iso_8601_in_the_zone_and_formulas_are_neutralised() {
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let mut shanghai = Clock::new(&shanghai);
        assert_eq!(
            written(&mut shanghai, 1_572_085_800),
            "2019-10-26T18:30:00+08:00"
        );
        let mut berlin = Clock::new(&berlin);
        for (seconds, time) in [
            (1_572_085_800, "2019-10-26T12:30:00+02:00"), // summer time, still
            (1_572_800_000, "2019-11-03T17:53:20+01:00"), // winter time
            // The change's first second, then either side of it: the clock keeps both spans.
            (1_572_138_000, "2019-10-27T02:00:00+01:00"),
            (1_572_137_999, "2019-10-27T02:59:59+02:00"),
            (1_572_138_000, "2019-10-27T02:00:00+01:00"),
            (1_572_137_999, "2019-10-27T02:59:59+02:00"),
            // Local mean time then, +00:53:28 (written to the minute); before the year 1, the
            // number.
            (-62_135_600_008, "0001-01-01T00:00:00+00:53"),
            (-62_135_600_009, "-62135600009"),
            // Near the end of jiff's range, and past it.
            (253_402_207_200, "9999-12-30T23:00:00+01:00"),
            (300_000_000_000, "300000000000"),
        ] {
            assert_eq!(written(&mut berlin, seconds), time);
        }
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
        /// Unicode, and quote-free ones; numbers; flags; times near and far) are written byte
        /// for byte as the `csv` crate writes them.
        #[test]
        fn rows_are_what_the_csv_crate_writes(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        "([,\"\r\n'=+@\t -]|a|张|.){0,8}".prop_map(|t| (0u8, t, 0i64)),
                        "([,\r\n'=+@\t -]|a|张|[^\"]){0,8}".prop_map(|t| (5u8, t, 0)),
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
                            5 => Cell::QuoteFree(text.as_bytes()),
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

        /// Times as a list has them (near one another, back and forth across midnight and the
        /// zone's transitions), in zones with summer time, half-hour offsets and a half-hour
        /// change, are what jiff writes when asked afresh for each.
        #[test]
        fn a_clock_writes_each_time_as_jiff_does(
            zone in prop::sample::select(&[
                "Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Australia/Lord_Howe",
                "Asia/Shanghai", "America/Sao_Paulo", "UTC",
            ][..]),
            start in -2_500_000_000..4_500_000_000i64,
            // From the zone's next transition on, by a few seconds and by days.
            jitter in -2..2i64,
            steps in proptest::collection::vec(
                prop_oneof![-3..3i64, -200_000..200_000i64],
                1..200,
            ),
        ) {
            let tz = TimeZone::get(zone).unwrap();
            let mut clock = Clock::new(&tz);
            let start = Timestamp::from_second(start).unwrap();
            let mut seconds = tz.following(start).next().map_or(start, |t| t.timestamp()).as_second() + jitter;
            for step in steps {
                seconds += step;
                prop_assert_eq!(written(&mut clock, seconds), by_jiff(seconds, &tz), "{}", seconds);
            }
        }
    }
}

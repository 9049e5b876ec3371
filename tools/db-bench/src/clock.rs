//! Wall-clock text without a date library: ctime's `Thu Nov 27 10:00:00
//! 2026` for the header and `2026/11/27-10:00:00` for progress lines, in
//! UTC.

use std::time::{SystemTime, UNIX_EPOCH};

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

fn now_civil() -> Civil {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil(secs)
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's
/// `civil_from_days`.
fn civil(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        weekday: ((days + 4).rem_euclid(7)) as u32, // 1970-01-01 was a Thursday
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Thu Nov 27 10:00:00 2026`, as ctime prints it.
pub fn ctime_now() -> String {
    format_ctime(&now_civil())
}

fn format_ctime(c: &Civil) -> String {
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[c.weekday as usize % 7],
        MONTHS[(c.month as usize + 11) % 12],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

/// `2026/11/27-10:00:00`, as RocksDB's `TimeToString`.
pub fn timestamp_now() -> String {
    let c = now_civil();
    format!(
        "{}/{:02}/{:02}-{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_ctime(&civil(0)), "Thu Jan  1 00:00:00 1970");
        // 2026-11-27 10:00:00 UTC
        assert_eq!(
            format_ctime(&civil(1_795_773_600)),
            "Fri Nov 27 10:00:00 2026"
        );
    }
}

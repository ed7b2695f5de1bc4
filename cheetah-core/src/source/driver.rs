//! The ODBC driver a source names, and what to install when the driver manager cannot find it.
//!
//! Nothing here loads a driver: the driver manager loads one only when a connection is made,
//! so a process that only reads the cache never does.

use std::path::Path;

use arrow_odbc::odbc_api::Error as OdbcError;

use crate::config::connection_pairs;

/// What unixODBC's driver manager says when the driver named is not registered, or its library
/// is not there: its states IM002 and IM003, or its message under state 01000, which it puts
/// first when the library named in odbcinst.ini (or by path) cannot be opened.
const SIGNS: [&str; 4] = ["State: IM002", "State: IM003", "Can't open lib", "Data source name not found"];

/// The `Driver=` of `connection_string`, without its braces.
pub fn driver_name(connection_string: &str) -> Option<&str> {
    connection_pairs(connection_string)
        .find(|(key, _)| key.eq_ignore_ascii_case("driver"))
        .map(|(_, value)| value.trim().trim_start_matches('{').trim_end_matches('}'))
}

/// Whether `error`, from connecting, says the driver named could not be found or loaded.
pub fn is_missing_driver(error: &OdbcError) -> bool {
    let message = error.to_string();
    matches!(error, OdbcError::Diagnostics { .. }) && SIGNS.iter().any(|sign| message.contains(sign))
}

/// How to install `driver` on Debian: the package that ships it, or how to register one.
pub fn install_hint(driver: &str) -> String {
    let name = driver.to_ascii_lowercase();
    let file = Path::new(driver).file_name().and_then(|f| f.to_str()).unwrap_or(driver);
    let package = [
        ("postgres", "odbc-postgresql"),
        ("psqlodbc", "odbc-postgresql"),
        ("mariadb", "odbc-mariadb"),
        ("maodbc", "odbc-mariadb"),
        ("mysql", "odbc-mariadb"),
        ("sqlite", "libsqliteodbc"),
        ("freetds", "tdsodbc"),
        ("tdsodbc", "tdsodbc"),
    ]
    .iter()
    .find(|(needle, _)| name.contains(needle))
    .map(|(_, package)| *package);
    match package {
        Some(package) => {
            format!("on Debian or Ubuntu: `apt-get install {package}`, which registers it in /etc/odbcinst.ini")
        }
        None if name.contains("sql server") => {
            "install Microsoft's msodbcsql18 package from packages.microsoft.com".to_string()
        }
        None if driver.contains('/') => format!("`{file}` is not there; install its driver or fix the path"),
        None => "install it and register it in /etc/odbcinst.ini (`odbcinst -q -d` lists those registered)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_is_read_from_the_connection_string() {
        assert_eq!(driver_name("Driver={PostgreSQL Unicode};Server=h;"), Some("PostgreSQL Unicode"));
        assert_eq!(driver_name("server=h; DRIVER = SQLite3 ;Database=a.db"), Some("SQLite3"));
        assert_eq!(driver_name("DSN=market;Uid=u"), None);
    }

    #[test]
    fn each_common_driver_names_its_debian_package() {
        for (driver, package) in [
            ("PostgreSQL Unicode", "odbc-postgresql"),
            ("PostgreSQL ANSI", "odbc-postgresql"),
            ("MariaDB Unicode", "odbc-mariadb"),
            ("MySQL ODBC 8.0 Unicode Driver", "odbc-mariadb"),
            ("SQLite3", "libsqliteodbc"),
            ("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so", "odbc-postgresql"),
            ("FreeTDS", "tdsodbc"),
        ] {
            assert!(install_hint(driver).contains(&format!("apt-get install {package}`")), "{driver}");
        }
        assert!(install_hint("ODBC Driver 18 for SQL Server").contains("msodbcsql18"));
        assert!(install_hint("Acme").contains("odbcinst -q -d"));
        assert!(install_hint("/opt/acme/libacme.so").contains("`libacme.so` is not there"));
    }
}

//! `corrupt-chunk STORE TABLE FIELD DATE`: overwrites one value chunk with bytes that do not
//! decode, as a failing disk would. `tests/fixtures/make.sh` makes the corrupted fixture with it.

use anyhow::{bail, Context};
use cheetah_core::internals::Store;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store, table, field, date] = args.as_slice() else {
        bail!("usage: corrupt-chunk STORE TABLE FIELD YYYY-MM-DD");
    };
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").context("DATE is YYYY-MM-DD")?;
    let store = Store::open_writer(std::path::Path::new(store), 3)?;
    let catalog = store.catalog()?;
    let entry = catalog.table(table).with_context(|| format!("no table `{table}` in the store"))?;
    let field = entry.field(field).with_context(|| format!("no field `{field}` in table `{table}`"))?;
    let mut batch = store.batch();
    batch.put_values(entry.id, field, cheetah_core::internals::day_of(date), b"\x01\x00\x00\x00 not a chunk");
    store.write(batch)?;
    store.flush()?;
    Ok(())
}

//! `accounts`, `delete-account`, `release-lease`: operator tasks on a PostgreSQL database.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;
use wa_migrate::PostgresLocation;
use wa_store_postgres::admin::{self, InstanceInfo, LeaseInfo};
use wa_store_postgres::{Pool, SchemaName};

use crate::cli::{AccountArgs, DatabaseArgs};
use crate::hints::migrate_failure;
use crate::output::{Failure, Report};

fn store_failure(error: wa_auth::AuthError) -> Failure {
    let failure = Failure::new("database", error.to_string());
    match error {
        wa_auth::AuthError::AlreadyOwned { .. } => Failure {
            kind: "lease_held",
            ..failure
        }
        .hint("stop that replica first, or pass --force to fence it"),
        _ => failure,
    }
}

fn connect(connection: &str, schema: Option<&str>) -> Result<(Pool, SchemaName), Failure> {
    let pool = wa_store_postgres::connect::pool(connection, 2).map_err(store_failure)?;
    let schema = match schema {
        Some(name) => SchemaName::new(name).map_err(|e| Failure::usage(e.to_string()))?,
        None => SchemaName::default(),
    };
    Ok((pool, schema))
}

/// `postgres://...?schema=S` split into the connection and the schema.
fn split_schema(url: &str) -> (String, Option<String>) {
    let at = url.find('@').map_or(0, |i| i + 1);
    let Some(q) = url[at..].find('?') else {
        return (url.to_owned(), None);
    };
    let (base, query) = url.split_at(at + q);
    let mut schema = None;
    let kept: Vec<&str> = query[1..]
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    let connection = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (connection, schema)
}

fn describe_lease(lease: Option<&LeaseInfo>) -> String {
    match lease {
        None => "never leased".to_owned(),
        Some(l) => match &l.owner {
            None => format!("released (epoch {})", l.epoch),
            Some(owner) if l.live => format!(
                "{owner} (epoch {}, expires in {:.1} s)",
                l.epoch,
                l.expires_in_ms / 1000.0
            ),
            Some(owner) => format!(
                "{owner} (epoch {}, expired {:.1} s ago)",
                l.epoch,
                -l.expires_in_ms / 1000.0
            ),
        },
    }
}

fn table(instances: &[InstanceInfo]) -> String {
    let mut out = format!(
        "{:<32} {:>6} {:>8}  {:<13}  lease\n",
        "account", "creds", "keys", "last write"
    );
    for i in instances {
        let keys: i64 = i.keys.values().sum();
        let last = i
            .last_write_unix_ms
            .map_or("-".to_owned(), |ms| format!("{}", ms / 1000));
        out.push_str(&format!(
            "{:<32} {:>6} {:>8}  {:<13}  {}\n",
            i.instance_id,
            if i.has_creds { "yes" } else { "no" },
            keys,
            last,
            describe_lease(i.lease.as_ref())
        ));
    }
    out.push_str(&format!(
        "{} account(s); last write in Unix seconds\n",
        instances.len()
    ));
    out
}

/// `accounts`.
pub async fn accounts(args: DatabaseArgs) -> Result<Report, Failure> {
    let (connection, schema) = split_schema(&args.database);
    let (pool, schema) = connect(&connection, schema.as_deref())?;
    let instances = admin::list_instances(&pool, &schema)
        .await
        .map_err(store_failure)?;
    Ok(Report::new(
        json!({"accounts": &instances}),
        table(&instances),
    ))
}

fn account(text: &str) -> Result<(PostgresLocation, Pool, SchemaName), Failure> {
    let location = PostgresLocation::parse(text).map_err(|e| migrate_failure(e, "--format"))?;
    let (pool, schema) = connect(&location.connection, location.schema.as_deref())?;
    Ok((location, pool, schema))
}

/// Asks the user to type `instance` back, unless `yes`; refuses without a terminal.
fn confirm(instance: &str, what: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!("{what} needs confirmation")).hint("pass --yes"));
    }
    eprint!("{what}: type the account id ({instance}) to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new("io", format!("cannot read the confirmation: {e}")))?;
    if line.trim() == instance {
        Ok(())
    } else {
        Err(Failure::new(
            "not_confirmed",
            "not confirmed; nothing was changed",
        ))
    }
}

/// `delete-account`.
pub async fn delete_account(args: AccountArgs) -> Result<Report, Failure> {
    let (location, pool, schema) = account(&args.account)?;
    let instance = &location.instance;
    confirm(
        instance,
        &format!("delete every row of account {instance}"),
        args.yes,
    )?;
    let deleted = admin::delete_instance(&pool, &schema, instance, args.force)
        .await
        .map_err(store_failure)?;
    let human = format!(
        "deleted account {instance}: {} key(s), creds {}, lease {}\n",
        deleted.keys,
        if deleted.creds { "removed" } else { "absent" },
        describe_lease(deleted.lease.as_ref())
    );
    Ok(Report::new(
        json!({"instance": instance, "deleted": deleted}),
        human,
    ))
}

/// `release-lease`.
pub async fn release_lease(args: AccountArgs) -> Result<Report, Failure> {
    let (location, pool, schema) = account(&args.account)?;
    let instance = &location.instance;
    if args.force {
        confirm(
            instance,
            &format!("fence the live owner of {instance}"),
            args.yes,
        )?;
    }
    let previous = admin::release_lease(&pool, &schema, instance, args.force)
        .await
        .map_err(store_failure)?;
    let human = format!(
        "released the lease of {instance}; it was held by {}\n",
        describe_lease(previous.as_ref())
    );
    Ok(Report::new(
        json!({"instance": instance, "previous": previous}),
        human,
    ))
}

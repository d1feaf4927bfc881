//! Configuration: layering and every kind of error, with its message.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

use figment::Jail;
use oms_core::config::{Config, ConfigError, LogLevel, Overrides};

fn load(jail: &Jail, overrides: Overrides) -> Result<Config, ConfigError> {
    Config::load(Some(&jail.directory().join("oms.toml")), &overrides)
}

fn message(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_work_out_of_the_box() {
    // In a Jail: other tests set OMS_ variables, and the environment is a layer.
    Jail::expect_with(|_| {
        defaults_are_valid();
        Ok(())
    });
}

fn defaults_are_valid() {
    let c = Config::load(None, &Overrides::default()).expect("defaults are valid");
    assert_eq!(c.server.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(
        (c.database.min_connections, c.database.max_connections),
        (5, 20)
    );
    assert_eq!(c.server.log_level, LogLevel::Info);
    assert!(!c.auth.enabled);
    assert!(c.server.workers >= 1);
    assert!(
        c.database
            .effective_url(&c.base_dir)
            .ends_with("oms.db?mode=rwc")
    );
}

#[test]
fn file_then_env_then_flags_take_precedence() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "oms.toml",
            "[server]\nbind = \"127.0.0.1:7001\"\nworkers = 3\nlog_level = \"warn\"\n[database]\nmax_connections = 30\n",
        )?;
        let c = load(jail, Overrides::default()).expect("file");
        assert_eq!(c.server.bind.port(), 7001);
        assert_eq!(c.server.workers, 3);
        assert_eq!(c.database.max_connections, 30);

        jail.set_env("OMS_SERVER__BIND", "127.0.0.1:7002");
        jail.set_env("OMS_DATABASE__MAX_CONNECTIONS", "40");
        let c = load(jail, Overrides::default()).expect("env");
        assert_eq!(c.server.bind.port(), 7002, "env beats file");
        assert_eq!(c.database.max_connections, 40, "env beats file");
        assert_eq!(
            c.server.workers, 3,
            "file still applies where env is silent"
        );

        let flags = Overrides {
            bind: Some("127.0.0.1:7003".into()),
            workers: Some(1),
            log_level: Some("debug".into()),
            database_url: Some("postgres://u:pw@localhost/db".into()),
        };
        let c = load(jail, flags).expect("flags");
        assert_eq!(c.server.bind.port(), 7003, "flag beats env");
        assert_eq!(c.server.workers, 1, "flag beats file");
        assert_eq!(c.server.log_level, LogLevel::Debug);
        assert_eq!(
            c.database.url.as_deref(),
            Some("postgres://u:pw@localhost/db")
        );
        assert_eq!(
            c.database.max_connections, 40,
            "env still applies where flags are silent"
        );
        assert_eq!(
            c.redacted().database.url.as_deref(),
            Some("postgres://u:***@localhost/db")
        );
        Ok(())
    });
}

#[test]
fn unrelated_oms_variables_are_not_config() {
    Jail::expect_with(|jail| {
        jail.create_file("oms.toml", "")?;
        jail.set_env("OMS_TEST_POSTGRES_URL", "postgres://x/y");
        jail.set_env("OMS_CONFIG", "elsewhere.toml");
        load(jail, Overrides::default()).expect("OMS_TEST_POSTGRES_URL is not a config key");
        Ok(())
    });
}

#[test]
fn the_default_sqlite_file_lives_next_to_the_config() {
    Jail::expect_with(|jail| {
        jail.create_dir("conf")?;
        jail.create_file("conf/oms.toml", "")?;
        let path = jail.directory().join("conf/oms.toml");
        let c = Config::load(Some(&path), &Overrides::default()).expect("valid");
        let url = c.database.effective_url(&c.base_dir);
        assert!(url.contains("conf/oms.db"), "{url}");
        Ok(())
    });
}

#[test]
fn unknown_keys_are_named_with_what_is_allowed() {
    Jail::expect_with(|jail| {
        jail.create_file("oms.toml", "[database]\nmax_conections = 10\n")?;
        let msg = message(load(jail, Overrides::default()));
        assert!(msg.contains("database.max_conections"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
        assert!(
            msg.contains("max_connections"),
            "lists what is allowed: {msg}"
        );
        assert!(msg.contains("oms.toml"), "names the source: {msg}");

        jail.create_file("oms.toml", "[databse]\n")?;
        let msg = message(load(jail, Overrides::default()));
        assert!(msg.contains("databse") && msg.contains("database"), "{msg}");
        Ok(())
    });
}

#[test]
fn wrong_types_and_bad_enum_values_are_named() {
    Jail::expect_with(|jail| {
        jail.create_file("oms.toml", "[server]\nworkers = \"many\"\n")?;
        let msg = message(load(jail, Overrides::default()));
        assert!(
            msg.contains("server.workers") && msg.contains("many"),
            "{msg}"
        );

        jail.create_file("oms.toml", "[server]\nlog_level = \"loud\"\n")?;
        let msg = message(load(jail, Overrides::default()));
        assert!(
            msg.contains("server.log_level") && msg.contains("loud"),
            "{msg}"
        );
        assert!(msg.contains("`info`"), "lists the allowed levels: {msg}");

        jail.create_file("oms.toml", "")?;
        jail.set_env("OMS_DATABASE__MAX_CONNECTIONS", "lots");
        let msg = message(load(jail, Overrides::default()));
        assert!(
            msg.contains("database.max_connections") && msg.contains("lots"),
            "{msg}"
        );
        assert!(msg.contains("environment"), "names the env source: {msg}");
        Ok(())
    });
}

#[test]
fn bad_values_and_cross_field_rules_are_all_reported() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "oms.toml",
            "[database]\nmax_connections = 0\n[audit]\nqueue_capacity = 10\nbatch_size = 20\n",
        )?;
        let err = load(jail, Overrides::default()).expect_err("invalid");
        let msg = err.to_string();
        assert!(
            msg.contains("database.max_connections = 0: must be >= database.min_connections (5)"),
            "{msg}"
        );
        assert!(
            msg.contains("audit.batch_size = 20: must be <= audit.queue_capacity (10)"),
            "{msg}"
        );
        assert!(err.issues().len() >= 3, "every problem at once: {msg}");
        Ok(())
    });
}

#[test]
fn auth_off_is_refused_on_a_public_bind() {
    Jail::expect_with(|jail| {
        jail.create_file("oms.toml", "[server]\nbind = \"0.0.0.0:8000\"\n")?;
        let msg = message(load(jail, Overrides::default()));
        assert!(msg.contains("auth.enabled = false"), "{msg}");
        assert!(msg.contains("loopback"), "{msg}");

        let digest = "a".repeat(64);
        jail.create_file(
            "oms.toml",
            &format!(
                "[server]\nbind = \"0.0.0.0:8000\"\n[auth]\nenabled = true\n[[auth.keys]]\nname = \"ops\"\nsha256 = \"{digest}\"\nroles = [\"admin\"]\n"
            ),
        )?;
        load(jail, Overrides::default()).expect("auth on a public bind is fine");

        jail.create_file(
            "oms.toml",
            "[auth]\nenabled = true\n[[auth.keys]]\nname = \"ops\"\nsha256 = \"nothex\"\nroles = [\"root\"]\n",
        )?;
        let msg = message(load(jail, Overrides::default()));
        assert!(msg.contains("auth.keys") && msg.contains("root"), "{msg}");
        Ok(())
    });
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let msg = message(Config::load(
        Some(std::path::Path::new("/nonexistent/oms.toml")),
        &Overrides::default(),
    ));
    assert!(
        msg.contains("/nonexistent/oms.toml") && msg.contains("does not exist"),
        "{msg}"
    );
}

//! Our `.proto` files agree with `fixtures/wire/proto-schema.json` (the field facts of
//! WhatsApp's schema as Baileys 7 ships it): every message and enum there exists here with the
//! same field numbers, names, types, labels and enum values.
//!
//! Deliberate differences: our files are proto2 with every field `optional` (so explicit zeros
//! re-encode, as byte-exact payloads need), repeated scalars are declared `packed` (proto3's
//! default), and the `Message.AppStateSyncKey*` types are top-level messages (same wire format).

mod common;

use std::collections::HashMap;
use std::path::Path;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto};
use serde_json::Value;

#[derive(Default)]
struct Ours {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, EnumDescriptorProto>,
}

fn collect(prefix: &str, message: &DescriptorProto, ours: &mut Ours) {
    let name = format!("{prefix}{}", message.name());
    for nested in &message.nested_type {
        collect(&format!("{name}."), nested, ours);
    }
    for e in &message.enum_type {
        ours.enums.insert(format!("{name}.{}", e.name()), e.clone());
    }
    ours.messages.insert(name, message.clone());
}

fn our_schema() -> Ours {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("proto dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".proto"))
        .collect();
    assert!(!files.is_empty());
    let fds = protox::compile(&files, [&dir]).expect("our .proto files compile");
    let mut ours = Ours::default();
    for file in &fds.file {
        assert_eq!(file.package(), "proto", "{}", file.name());
        for m in &file.message_type {
            collect("", m, &mut ours);
        }
        for e in &file.enum_type {
            ours.enums.insert(e.name().to_owned(), e.clone());
        }
    }
    ours
}

/// Our name for a schema type name (the `Message.` container is flattened here).
fn local_name(name: &str, known: impl Fn(&str) -> bool) -> Option<&str> {
    if known(name) {
        return Some(name);
    }
    name.strip_prefix("Message.").filter(|n| known(n))
}

fn normalized(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The first field number reserved for the project's own extension fields.
const EXTENSION_FIELDS_FROM: i32 = 100;

fn check_message(name: &str, schema: &Value, ours: &DescriptorProto) -> Vec<String> {
    let mut problems = Vec::new();
    let fields = schema["fields"].as_array().expect("fields");
    // Field numbers from 100 up are this project's documented extensions of the storage
    // records (see signal.proto); standard readers skip them, and the schema does not list them.
    let standard_fields = ours
        .field
        .iter()
        .filter(|f| f.number() < EXTENSION_FIELDS_FROM)
        .count();
    if fields.len() != standard_fields {
        problems.push(format!(
            "{name}: {} fields here, {} in the schema",
            standard_fields,
            fields.len()
        ));
    }
    for f in fields {
        let fname = f["name"].as_str().expect("field name");
        let number = f["number"].as_i64().expect("field number") as i32;
        let Some(field) = ours.field.iter().find(|x| x.number() == number) else {
            problems.push(format!("{name}.{fname} (#{number}) is missing"));
            continue;
        };
        let here = format!("{name}.{fname} (#{number})");
        if normalized(field.name()) != normalized(fname) {
            problems.push(format!("{here} is named {} here", field.name()));
        }
        let schema_type = f["type"].as_str().expect("field type");
        let our_type = match field.r#type() {
            Type::Message | Type::Enum => field
                .type_name()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned(),
            scalar => scalar
                .as_str_name()
                .trim_start_matches("TYPE_")
                .to_lowercase(),
        };
        let schema_short = schema_type.rsplit('.').next().unwrap_or_default();
        if our_type != schema_short {
            problems.push(format!(
                "{here} is {our_type} here, {schema_type} in the schema"
            ));
        }
        let expected_label = match f["label"].as_str() {
            Some("repeated") => Label::Repeated,
            Some("optional") => Label::Optional,
            other => panic!("{here}: unknown label {other:?}"),
        };
        if field.label() != expected_label {
            problems.push(format!("{here} is {:?} here", field.label()));
        }
        let scalar = !matches!(field.r#type(), Type::Message | Type::String | Type::Bytes);
        if expected_label == Label::Repeated && scalar {
            let packed = field.options.as_ref().and_then(|o| o.packed) == Some(true);
            if !packed {
                problems.push(format!("{here} must be packed (proto3 default)"));
            }
        }
    }
    problems
}

fn check_enum(name: &str, schema: &Value, ours: &EnumDescriptorProto) -> Vec<String> {
    let values = schema["values"].as_object().expect("values");
    let mut problems = Vec::new();
    if values.len() != ours.value.len() {
        problems.push(format!(
            "{name}: {} values here, {} in the schema",
            ours.value.len(),
            values.len()
        ));
    }
    for (vname, number) in values {
        let number = number.as_i64().expect("enum number") as i32;
        match ours.value.iter().find(|v| v.name() == vname) {
            None => problems.push(format!("{name}.{vname} is missing")),
            Some(v) if v.number() != number => problems.push(format!(
                "{name}.{vname} = {} here, {number} in the schema",
                v.number()
            )),
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn proto_files_match_the_schema_facts() {
    let doc = common::read_json(&common::wire_dir().join("proto-schema.json"));
    assert_eq!(doc["format"], "wa-proto-schema/1");
    let ours = our_schema();
    let types = doc["types"].as_object().expect("types");
    assert!(!types.is_empty(), "no types in the schema file");
    let mut problems = Vec::new();
    for (name, schema) in types {
        if schema.get("fields").is_some() {
            match local_name(name, |n| ours.messages.contains_key(n)) {
                Some(local) => problems.extend(check_message(name, schema, &ours.messages[local])),
                None => problems.push(format!("message {name} is missing")),
            }
        } else {
            match local_name(name, |n| ours.enums.contains_key(n)) {
                Some(local) => problems.extend(check_enum(name, schema, &ours.enums[local])),
                None => problems.push(format!("enum {name} is missing")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} difference(s) from proto-schema.json:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

"""Checks the provider's hand-written Modal messages against the official `modal` package.

Reads a JSON document from the file named by argv[1]:
  {"samples": [{"type": "modal.client.X", "json": {...}, "hex": "..."}],
   "rpcs": [{"path": "/pkg.Service/Method", "request": "pkg.X", "response": "pkg.Y",
             "streaming": false}]}
where `json` is the sample as the provider's structs name their fields and `hex` is the
provider's encoding of it. For each sample:
  - decodes `hex` with the official generated class and compares it, field by field and by
    name, with `json` (a field under a wrong number lands elsewhere or nowhere);
  - builds the official message from `json` by field name and encodes it, for the provider
    to decode and compare the other way round.
For each RPC: the method exists with those request and response types and streaming kind.
Writes {"version", "mismatches": [...], "encoded": ["hex", ...]} to the file in argv[2].
"""

import json
import sys

import modal
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from modal_proto import api_pb2, task_command_router_pb2  # noqa: F401 (registers the types)

POOL = descriptor_pool.Default()


def message_class(full_name):
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def is_map(field):
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
    )


def is_repeated(field):
    # `label` is deprecated in newer protobuf releases; `is_repeated` is absent in older ones.
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return repeated
    return field.label == FieldDescriptor.LABEL_REPEATED


def plain_value(field, value):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return plain(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return list(value)
    return value


def plain(message):
    """The set fields of `message` by name: maps as objects, bytes as lists of numbers,
    enums as numbers, oneof members under their own names."""
    out = {}
    for field, value in message.ListFields():
        if is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: plain_value(value_field, v) for k, v in value.items()}
        elif is_repeated(field):
            out[field.name] = [plain_value(field, v) for v in value]
        else:
            out[field.name] = plain_value(field, value)
    return out


def drop_defaults(value):
    """Both sides without default values, which proto3 does not put on the wire."""
    if isinstance(value, dict):
        kept = {k: drop_defaults(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", 0, False, [], {})}
    if isinstance(value, list):
        return [drop_defaults(v) for v in value]
    return value


def differences(expected, actual, path="", found=None):
    found = [] if found is None else found
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            where = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(f"{where}: sent {expected[key]!r}, the official class has nothing")
            elif key not in expected:
                found.append(f"{where}: not sent, the official class reads {actual[key]!r}")
            else:
                differences(expected[key], actual[key], where, found)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for n, (e, a) in enumerate(zip(expected, actual)):
            differences(e, a, f"{path}[{n}]", found)
    elif expected != actual:
        found.append(f"{path}: sent {expected!r}, the official class reads {actual!r}")
    return found


def fill(message, value):
    """Sets the fields of `message` by name from the provider's JSON (bytes as lists)."""
    for key, item in value.items():
        field = message.DESCRIPTOR.fields_by_name.get(key)
        if field is None:
            raise KeyError(f"the official {message.DESCRIPTOR.full_name} has no field {key!r}")
        target = getattr(message, key) if is_repeated(field) or field.message_type else None
        if is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            for k, v in item.items():
                if value_field.message_type:
                    fill(target[k], v)
                else:
                    target[k] = scalar(value_field, v)
        elif is_repeated(field):
            for v in item:
                if field.message_type:
                    fill(target.add(), v)
                else:
                    target.append(scalar(field, v))
        elif field.message_type:
            target.SetInParent()
            fill(target, item)
        else:
            setattr(message, key, scalar(field, item))
    return message


def scalar(field, value):
    return bytes(value) if field.type == FieldDescriptor.TYPE_BYTES else value


def check_sample(sample, mismatches):
    name = sample["type"]
    cls = message_class(name)
    decoded = cls.FromString(bytes.fromhex(sample["hex"]))
    expected = drop_defaults(sample["json"])
    for problem in differences(expected, drop_defaults(plain(decoded))):
        mismatches.append(f"{name}: {problem}")
    built = fill(cls(), expected)
    return built.SerializeToString(deterministic=True).hex()


def check_rpc(rpc, mismatches):
    service_name, method_name = rpc["path"].lstrip("/").split("/")
    try:
        method = POOL.FindServiceByName(service_name).FindMethodByName(method_name)
    except KeyError:
        method = None
    if method is None:
        mismatches.append(f"{rpc['path']}: no such method")
        return
    for what, actual in [
        ("request", method.input_type.full_name),
        ("response", method.output_type.full_name),
        ("streaming", method.server_streaming),
    ]:
        if rpc[what] != actual:
            mismatches.append(f"{rpc['path']}: {what} is {actual!r}, not {rpc[what]!r}")


def main():
    with open(sys.argv[1]) as source:
        document = json.load(source)
    mismatches, encoded = [], []
    for sample in document["samples"]:
        try:
            encoded.append(check_sample(sample, mismatches))
        except Exception as error:  # a parse failure is a finding, not a crash
            mismatches.append(f"{sample['type']}: {type(error).__name__}: {error}")
            encoded.append("")
    for rpc in document["rpcs"]:
        check_rpc(rpc, mismatches)
    with open(sys.argv[2], "w") as sink:
        json.dump({"version": modal.__version__, "mismatches": mismatches, "encoded": encoded}, sink)


if __name__ == "__main__":
    main()

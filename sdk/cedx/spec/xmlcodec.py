"""JSON ⇄ XML mapping of the spec's documents (the rules are in spec/README.md §XML).

* The root element is the document's schema name in the spec namespace; properties marked
  ``xml.attribute`` (``specVersion``) are attributes; other properties are child elements in
  the order the schema declares them.
* An array is a wrapper element named after the property holding one element per item, named
  by the items' ``xml.name``; an empty array is an empty wrapper, an absent one is absent.
* Scalars are element text: strings verbatim, integers in decimal, booleans true/false.

Parsing is hardened: no DTD, no entities, no network, no processing instructions; a document
that declares any of them is refused before it is read.
"""

from __future__ import annotations

from typing import Any, cast

from lxml import etree

from .schema import SchemaIndex

MAX_XML_BYTES = 20 * 1024 * 1024


class XmlError(ValueError):
    """The XML cannot be read as the expected document; ``path`` says where."""

    def __init__(self, message: str, path: str = "$", code: str = "MALFORMED_BODY"):
        super().__init__(f"{path}: {message}" if path != "$" else message)
        self.path = path
        self.code = code


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        remove_comments=True, remove_pis=False, huge_tree=False,
    )


def parse_secure(data: bytes) -> etree._Element:
    """Parse untrusted XML; refuse DTDs, entity declarations and processing instructions."""
    if len(data) > MAX_XML_BYTES:
        raise XmlError("XML document too large", code="PAYLOAD_TOO_LARGE")
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise XmlError("XML with a DTD or entity declaration is refused", code="XML_FORBIDDEN_CONSTRUCT")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"XML is not well-formed: {exc}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlError("XML with a DTD is refused", code="XML_FORBIDDEN_CONSTRUCT")
    for node in root.iter():
        if isinstance(node, (etree._ProcessingInstruction, etree._Entity)):
            raise XmlError("XML processing instructions and entities are refused",
                           code="XML_FORBIDDEN_CONSTRUCT")
    for sibling in list(root.itersiblings(preceding=True)) + list(root.itersiblings()):
        if isinstance(sibling, (etree._ProcessingInstruction, etree._Entity)):
            raise XmlError("XML processing instructions are refused", code="XML_FORBIDDEN_CONSTRUCT")
    return root


class XmlCodec:
    def __init__(self, index: SchemaIndex):
        self.index = index
        self.ns = index.namespace

    def _q(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"

    # --- logical record → XML -------------------------------------------------------------
    def to_element(self, schema_name: str, record: dict[str, Any]) -> etree._Element:
        root = etree.Element(self._q(schema_name), nsmap={None: self.ns})
        self._fill(root, self.index.schemas[schema_name], record)
        return root

    def dumps(self, schema_name: str, record: dict[str, Any], pretty: bool = True) -> bytes:
        return cast(bytes, etree.tostring(
            self.to_element(schema_name, record), xml_declaration=True, encoding="UTF-8",
            pretty_print=pretty,
        ))

    def _scalar_text(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, str)):
            return str(value)
        raise TypeError(f"cannot write {type(value).__name__} to XML")

    def _fill(self, element: etree._Element, schema: dict[str, Any], value: Any) -> None:
        kind = self.index.kind(schema)
        if kind == "object":
            for prop in self.index.properties(schema):
                if prop.name not in value:
                    continue
                if prop.attribute:
                    element.set(prop.name, self._scalar_text(value[prop.name]))
                else:
                    child = etree.SubElement(element, self._q(prop.name))
                    self._fill(child, prop.schema, value[prop.name])
        elif kind == "array":
            item_schema, item_name = self.index.item_schema(schema), self.index.item_name(schema)
            for item in value:
                self._fill(etree.SubElement(element, self._q(item_name)), item_schema, item)
        elif kind == "union":
            discriminator, mapping = self.index.variants(schema)
            variant = mapping[value[discriminator]]
            self._fill(etree.SubElement(element, self._q(variant)), self.index.schemas[variant], value)
        else:
            element.text = self._scalar_text(value)

    # --- XML → logical record -------------------------------------------------------------
    def loads(self, data: bytes, schema_name: str | None = None) -> tuple[str, dict[str, Any]]:
        """Parse XML into (schema name, logical record). ``schema_name`` fixes the root."""
        root = parse_secure(data)
        qname = etree.QName(root)
        if qname.namespace != self.ns:
            raise XmlError(f"root element must be in namespace {self.ns}, found {qname.namespace!r}")
        name = qname.localname
        if schema_name is not None and name != schema_name:
            raise XmlError(f"expected root element {schema_name}, found {name}")
        if name not in self.index.schemas or self.index.kind(self.index.schemas[name]) != "object":
            raise XmlError(f"unknown document element {name}")
        return name, self._read(root, self.index.schemas[name], "$")

    def _read(self, element: etree._Element, schema: dict[str, Any], path: str) -> Any:
        kind = self.index.kind(schema)
        if kind == "object":
            return self._read_object(element, schema, path)
        if kind == "array":
            item_schema, item_name = self.index.item_schema(schema), self.index.item_name(schema)
            self._no_text(element, path)
            out = []
            for i, child in enumerate(self._children(element)):
                cpath = f"{path}[{i}]"
                if child.tag != self._q(item_name):
                    raise XmlError(f"expected element {item_name}, found {etree.QName(child).localname}", cpath, "SCHEMA_VIOLATION")
                out.append(self._read(child, item_schema, cpath))
            return out
        if kind == "union":
            self._no_text(element, path)
            children = self._children(element)
            _prop, mapping = self.index.variants(schema)
            names = set(mapping.values())
            local = etree.QName(children[0]).localname if len(children) == 1 else None
            if local not in names:
                raise XmlError(f"expected exactly one of {', '.join(sorted(names))}", path, "SCHEMA_VIOLATION")
            return self._read(children[0], self.index.schemas[local], path)
        if len(self._children(element)):
            raise XmlError("element content where a value is expected", path, "SCHEMA_VIOLATION")
        if element.attrib:
            raise XmlError(f"unexpected attribute {next(iter(element.attrib))}", path, "SCHEMA_VIOLATION")
        return self._scalar(element.text or "", kind, path)

    def _children(self, element: etree._Element) -> list[Any]:
        return [c for c in element if isinstance(c.tag, str)]

    def _no_text(self, element: etree._Element, path: str) -> None:
        texts = [element.text] + [c.tail for c in element]
        if any(t and t.strip() for t in texts):
            raise XmlError("text where only elements are allowed", path, "SCHEMA_VIOLATION")

    def _scalar(self, text: str, kind: str, path: str) -> Any:
        if kind == "integer":
            t = text.strip()
            if not t.lstrip("-").isdigit():
                raise XmlError(f"{t!r} is not an integer", path, "SCHEMA_VIOLATION")
            return int(t)
        if kind == "boolean":
            t = text.strip()
            if t not in ("true", "false", "1", "0"):
                raise XmlError(f"{t!r} is not a boolean", path, "SCHEMA_VIOLATION")
            return t in ("true", "1")
        if kind == "number":
            raise XmlError("binary numbers are not part of the spec", path, "SCHEMA_VIOLATION")
        return text

    def _read_object(self, element: etree._Element, schema: dict[str, Any], path: str) -> dict[str, Any]:
        self._no_text(element, path)
        props = {p.name: p for p in self.index.properties(schema)}
        out: dict[str, Any] = {}
        for attr, value in element.attrib.items():
            prop = props.get(attr)
            if prop is None or not prop.attribute:
                raise XmlError(f"unexpected attribute {attr}", path, "SCHEMA_VIOLATION")
            out[attr] = self._scalar(value, self.index.kind(prop.schema), f"{path}.{attr}")
        for child in self._children(element):
            qname = etree.QName(child)
            local = qname.localname
            cpath = f"{path}.{local}"
            prop = props.get(local)
            if qname.namespace != self.ns or prop is None or prop.attribute:
                raise XmlError(f"unexpected element {local}", cpath, "SCHEMA_VIOLATION")
            if local in out:
                raise XmlError(f"element {local} occurs more than once", cpath, "SCHEMA_VIOLATION")
            out[local] = self._read(child, prop.schema, cpath)
        # Keep the schema's order so that a logical record reads the same from either format.
        return {name: out[name] for name in props if name in out}

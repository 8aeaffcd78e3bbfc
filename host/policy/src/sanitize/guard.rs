//! A dry run of html5ever's tree builder that builds nothing and counts, so a page whose
//! parse would cost more than a budget linear in its size is refused before ammonia
//! parses it for real.
//!
//! The tree builder is the same code, driven by the same input, with a sink that answers
//! its questions (names, identity, template contents, integration points) as ammonia's
//! DOM does, so it takes the same decisions. What the sink measures:
//! - **depth**: each node's depth, a parent's plus one (a foster-parented node counts one
//!   below the table it is moved before, as it sits above it in the stack of open
//!   elements). The builder's scope checks walk that stack, so a bounded depth bounds
//!   the work per token;
//! - **elements** created, implied and reconstructed ones included (misnested formatting
//!   elements are re-created after every block: quadratic in the input without a bound);
//! - **work**: what the tree builder and ammonia's DOM will pay — for each node inserted
//!   and each parse error, the depth it happens at (the builder's scope checks and its
//!   handling of stray end tags walk the stack of open elements); plus the siblings
//!   scanned when a node is inserted before another (foster parenting) or removed, the
//!   children moved when they are reparented, the attributes compared when a second
//!   `<html>` or `<body>` tag merges its attributes into the first.
//!
//! The input is fed 4 KiB at a time and the run stops at the first chunk that exceeds a
//! budget; once exceeded, the sink stops its bookkeeping, so the rest of that chunk is
//! cheap too.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, ExpandedName, ParseOpts, QualName, local_name, ns};

use super::PageRefused;

/// Bytes fed to the parser between two budget checks.
const CHUNK: usize = 4096;

/// The budgets of one page.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    pub(super) max_depth: u32,
    pub(super) max_elements: u64,
    pub(super) max_work: u64,
}

#[derive(Debug)]
struct Counters {
    budget: Budget,
    elements: Cell<u64>,
    work: Cell<u64>,
    /// The depth of the builder's current node, as far as the sink can tell (at least
    /// the real one: not every removal from the stack is reported).
    current_depth: Cell<u32>,
    exceeded: Cell<Option<PageRefused>>,
}

impl Counters {
    fn stopped(&self) -> bool {
        self.exceeded.get().is_some()
    }

    fn refuse(&self, why: PageRefused) {
        if !self.stopped() {
            self.exceeded.set(Some(why));
        }
    }

    /// Adds `units` of work; false (and the run is over) past the budget.
    fn charge(&self, units: u64) -> bool {
        if self.stopped() {
            return false;
        }
        let work = self.work.get().saturating_add(units);
        self.work.set(work);
        if work > self.budget.max_work {
            self.refuse(PageRefused::TooMuchWork {
                limit: self.budget.max_work,
            });
            return false;
        }
        true
    }
}

/// A node as the dry run knows it: where it hangs, how deep, how many children and
/// attributes ammonia's DOM will give it. Parents are strong and children weak, so only
/// what the tree builder still holds (and its ancestors) stays in memory.
#[derive(Debug)]
struct Node {
    name: QualName,
    parent: RefCell<Option<Rc<Node>>>,
    /// Element and comment children; entries whose `parent` is no longer this node are
    /// stale and skipped.
    children: RefCell<Vec<Weak<Node>>>,
    /// Children in ammonia's DOM, text nodes included (adjacent texts are one node).
    child_count: Cell<u64>,
    last_is_text: Cell<bool>,
    depth: Cell<u32>,
    attributes: Cell<u64>,
    template_contents: Option<Rc<Node>>,
    integration_point: bool,
}

impl Node {
    fn new(name: QualName, template: bool, integration_point: bool, attributes: u64) -> Rc<Node> {
        Rc::new(Node {
            name,
            parent: RefCell::new(None),
            children: RefCell::new(Vec::new()),
            child_count: Cell::new(0),
            last_is_text: Cell::new(false),
            depth: Cell::new(0),
            attributes: Cell::new(attributes),
            template_contents: template.then(Node::other),
            integration_point,
        })
    }

    /// The document, a comment or a processing instruction: never asked for a name.
    fn other() -> Rc<Node> {
        Node::new(QualName::new(None, ns!(), local_name!("")), false, false, 0)
    }

    fn is_child_of(&self, parent: &Rc<Node>) -> bool {
        self.parent
            .borrow()
            .as_ref()
            .is_some_and(|p| Rc::ptr_eq(p, parent))
    }
}

struct Guard {
    document: Rc<Node>,
    counters: Rc<Counters>,
}

impl Guard {
    /// Hangs `child` under `parent` at `depth`; the depth budget applies to elements.
    fn attach(&self, parent: &Rc<Node>, child: &Rc<Node>, depth: u32) {
        *child.parent.borrow_mut() = Some(parent.clone());
        parent.children.borrow_mut().push(Rc::downgrade(child));
        parent.child_count.set(parent.child_count.get() + 1);
        child.depth.set(depth);
        if !child.name.local.is_empty() {
            self.counters.current_depth.set(depth);
            if depth > self.counters.budget.max_depth {
                self.counters.refuse(PageRefused::TooDeep {
                    limit: self.counters.budget.max_depth,
                });
            }
        }
    }

    /// Takes `node` out of its parent; ammonia's DOM searches the parent's children.
    fn detach(&self, node: &Rc<Node>) {
        let Some(parent) = node.parent.borrow_mut().take() else {
            return;
        };
        if self.counters.charge(parent.child_count.get()) {
            parent.child_count.set(parent.child_count.get().saturating_sub(1));
            // Whatever is last now is unknown: a following text counts as a new node.
            parent.last_is_text.set(false);
        }
    }
}

impl TreeSink for Guard {
    type Handle = Rc<Node>;
    type Output = ();
    type ElemName<'a> = ExpandedName<'a>;

    fn finish(self) {}

    fn parse_error(&self, _msg: Cow<'static, str>) {
        // A stray end tag walks the open elements before it is ignored.
        self.counters
            .charge(1 + u64::from(self.counters.current_depth.get()));
    }

    fn pop(&self, node: &Rc<Node>) {
        self.counters
            .current_depth
            .set(node.depth.get().saturating_sub(1));
    }

    fn get_document(&self) -> Rc<Node> {
        self.document.clone()
    }

    fn elem_name<'a>(&'a self, target: &'a Rc<Node>) -> ExpandedName<'a> {
        target.name.expanded()
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Rc<Node> {
        let attributes = attrs.len() as u64;
        let node = Node::new(
            name,
            flags.template,
            flags.mathml_annotation_xml_integration_point,
            attributes,
        );
        if self.counters.charge(1 + attributes) {
            let elements = self.counters.elements.get() + 1;
            self.counters.elements.set(elements);
            if elements > self.counters.budget.max_elements {
                self.counters.refuse(PageRefused::TooManyElements {
                    limit: self.counters.budget.max_elements,
                });
            }
        }
        node
    }

    fn create_comment(&self, _text: StrTendril) -> Rc<Node> {
        self.counters.charge(1);
        Node::other()
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Rc<Node> {
        self.counters.charge(1);
        Node::other()
    }

    fn append(&self, parent: &Rc<Node>, child: NodeOrText<Rc<Node>>) {
        // Inserting at some depth followed scope checks over the stack down to there.
        if !self.counters.charge(2 + u64::from(parent.depth.get())) {
            return;
        }
        match child {
            NodeOrText::AppendText(_) => {
                if !parent.last_is_text.replace(true) {
                    parent.child_count.set(parent.child_count.get() + 1);
                }
            }
            NodeOrText::AppendNode(node) => {
                self.detach(&node);
                self.attach(parent, &node, parent.depth.get().saturating_add(1));
                parent.last_is_text.set(false);
            }
        }
    }

    fn append_based_on_parent_node(
        &self,
        element: &Rc<Node>,
        prev_element: &Rc<Node>,
        child: NodeOrText<Rc<Node>>,
    ) {
        if element.parent.borrow().is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _name: StrTendril, _public: StrTendril, _system: StrTendril) {
        self.counters.charge(1);
    }

    fn get_template_contents(&self, target: &Rc<Node>) -> Rc<Node> {
        // The builder asks only for templates; anything else answers itself, as a
        // harmless stand-in rather than a panic.
        target.template_contents.clone().unwrap_or_else(|| target.clone())
    }

    fn same_node(&self, x: &Rc<Node>, y: &Rc<Node>) -> bool {
        Rc::ptr_eq(x, y)
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Rc<Node>, child: NodeOrText<Rc<Node>>) {
        let Some(parent) = sibling.parent.borrow().clone() else {
            return;
        };
        // ammonia's DOM finds the sibling's index, then shifts the later siblings.
        if !self
            .counters
            .charge(2 + parent.child_count.get() + u64::from(sibling.depth.get()))
        {
            return;
        }
        match child {
            NodeOrText::AppendText(_) => parent.child_count.set(parent.child_count.get() + 1),
            NodeOrText::AppendNode(node) => {
                self.detach(&node);
                self.attach(&parent, &node, sibling.depth.get().saturating_add(1));
            }
        }
    }

    fn add_attrs_if_missing(&self, target: &Rc<Node>, attrs: Vec<Attribute>) {
        // ammonia's DOM collects the existing names, then filters the new ones.
        let added = attrs.len() as u64;
        if self.counters.charge(1 + target.attributes.get() + added) {
            target.attributes.set(target.attributes.get() + added);
        }
    }

    fn remove_from_parent(&self, target: &Rc<Node>) {
        self.detach(target);
    }

    fn reparent_children(&self, node: &Rc<Node>, new_parent: &Rc<Node>) {
        let children = std::mem::take(&mut *node.children.borrow_mut());
        if !self
            .counters
            .charge(1 + node.child_count.get() + children.len() as u64)
        {
            return;
        }
        for child in children.iter().filter_map(Weak::upgrade) {
            if child.is_child_of(node) {
                *child.parent.borrow_mut() = Some(new_parent.clone());
                new_parent.children.borrow_mut().push(Rc::downgrade(&child));
            }
        }
        // Depths stay: the moved nodes keep their places in the stack of open elements.
        new_parent
            .child_count
            .set(new_parent.child_count.get() + node.child_count.replace(0));
        new_parent.last_is_text.set(node.last_is_text.replace(false));
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Rc<Node>) -> bool {
        handle.integration_point
    }
}

/// Runs the tree builder over `html` as ammonia will, within `budget`.
pub(super) fn check(html: &str, budget: Budget) -> Result<(), PageRefused> {
    let counters = Rc::new(Counters {
        budget,
        elements: Cell::new(0),
        work: Cell::new(0),
        current_depth: Cell::new(0),
        exceeded: Cell::new(None),
    });
    let sink = Guard {
        document: Node::other(),
        counters: counters.clone(),
    };
    // The same parser ammonia builds: a fragment in a `div`, default options.
    let mut parser = html5ever::parse_fragment(
        sink,
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        Vec::new(),
        false,
    );
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(chunk));
        if let Some(refused) = counters.exceeded.get() {
            return Err(refused);
        }
        rest = tail;
    }
    parser.finish();
    counters.exceeded.get().map_or(Ok(()), Err)
}

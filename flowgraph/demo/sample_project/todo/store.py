"""The todo list itself: items with a title, and whether they are done."""

from dataclasses import dataclass, field


@dataclass
class Item:
    title: str
    done: bool = False


@dataclass
class TodoList:
    items: list[Item] = field(default_factory=list)

    def add(self, title: str) -> Item:
        item = Item(title)
        self.items.append(item)
        return item

    def complete(self, title: str) -> None:
        for item in self.items:
            if item.title == title:
                item.done = True

    def pending(self) -> list[Item]:
        return [item for item in self.items if not item.done]

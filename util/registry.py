"""Small name -> class registries, one per kind of thing chosen on the command line.

`--netG scgan` resolves to the class registered with ``@GENERATORS.register("scgan")``. An unknown name
raises with the list of valid ones; registering a name twice raises instead of silently replacing the first.
"""


class RegistryError(ValueError):
    """A name that is not registered, or registered twice."""


class Registry:
    def __init__(self, kind: str, option: str):
        self.kind = kind          # e.g. "generator"
        self.option = option      # e.g. "--netG", used in error messages
        self._entries = {}

    def register(self, name: str):
        def decorator(obj):
            if name in self._entries:
                raise RegistryError(
                    f"{self.kind} '{name}' is registered twice: by {self._entries[name].__qualname__} "
                    f"and by {obj.__qualname__}")
            self._entries[name] = obj
            obj.registered_name = name
            return obj
        return decorator

    def get(self, name: str):
        if name not in self._entries:
            raise RegistryError(
                f"{self.option} {name}: unknown {self.kind}; registered: {', '.join(self.names())}")
        return self._entries[name]

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

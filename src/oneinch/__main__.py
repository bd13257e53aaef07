from .zygote import entry

entry()

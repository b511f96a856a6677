"""The directory: sites publish their hosts to etcd and watch everyone else's."""

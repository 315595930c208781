// The global search box: see templates/admin/cfadmin/global_search_box.html.

; EBR §4.2: people named john smithe in Seattle or Menlo Park (terms only)
(and (or (term location:seattle) (term location:menlo_park))
     (and (term text:john) (term text:smithe)))
